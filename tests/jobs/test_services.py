"""submit_job, cancel_job, run_job_inline and run_job: outcomes, retries, idempotency."""

from __future__ import annotations

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from engramia_site.request_context import acting_as
from jobs.exceptions import JobNotCancellable, UnknownJobKind
from jobs.models import Job
from jobs.services import cancel_job, run_job_inline, submit_job
from jobs.tasks import run_job
from tests.jobs.kinds import CALLS


def queued_job_ids() -> list[int]:
    return [message.task["args"][0] for message in OrmQ.objects.all()]


def test_submit_records_a_pending_job_and_queues_it_after_commit(
    project_a, owner, django_capture_on_commit_callbacks
):
    with acting_as(owner.user, api_key_name="ci-key", request_id="req-7"):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            job = submit_job(project=project_a, kind="test.echo", params={"n": 1}, actor=owner.user)
        assert queued_job_ids() == []  # nothing reaches the queue before the commit
        for callback in callbacks:
            callback()
    job.refresh_from_db()
    assert job.status == "pending" and job.attempts == 0 and job.max_attempts == 3
    assert (job.actor, job.api_key_name, job.request_id) == (owner.user, "ci-key", "req-7")
    assert job.params == {"n": 1}
    assert queued_job_ids() == [job.pk]
    assert OrmQ.objects.get().task["timeout"] == 30  # the kind's own time limit


def test_queueing_after_commit_does_not_read_the_job_again(
    project_a, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = submit_job(project=project_a, kind="test.echo", params={}, actor=None)
    with CaptureQueriesContext(connection) as queries:
        for callback in callbacks:
            callback()
    assert queued_job_ids() == [job.pk]
    assert not [q["sql"] for q in queries if 'FROM "jobs_job"' in q["sql"]]


def test_submit_takes_its_limits_from_the_kind(project_a):
    job = submit_job(project=project_a, kind="test.fail", params={}, enqueue=False, actor=None)
    assert job.max_attempts == 2


def test_submit_refuses_unknown_kinds_and_unserialisable_params(project_a):
    with pytest.raises(UnknownJobKind, match="nope"):
        submit_job(project=project_a, kind="nope", params={}, actor=None)
    with pytest.raises(ValueError, match="JSON"):
        submit_job(project=project_a, kind="test.echo", params={"file": object()}, actor=None)
    assert not Job.objects.exists()


def test_a_cli_label_is_kept_when_there_is_no_user(project_a):
    with acting_as(label="cli:alice"):
        job = submit_job(project=project_a, kind="test.echo", params={}, enqueue=False, actor=None)
    assert job.actor is None and job.actor_label == "cli:alice"


def test_inline_run_succeeds_as_the_submitter(project_a, editor):
    with acting_as(editor.user, api_key_name="k1", request_id="req-inline"):
        job = submit_job(
            project=project_a,
            kind="test.echo",
            params={"x": [1, 2]},
            enqueue=False,
            actor=editor.user,
        )
    finished = run_job_inline(job)
    assert finished.status == "succeeded" and finished.attempts == 1
    assert finished.result == {
        "echo": {"x": [1, 2]},
        "actor": editor.user.email,
        "api_key_name": "k1",
        "request_id": "req-inline",
    }
    assert finished.progress_done == 1 and finished.progress_total == 1
    assert finished.error == "" and finished.started_at <= finished.finished_at


def test_a_failing_handler_ends_failed_with_its_message_and_is_not_retried(project_a):
    CALLS.clear()
    job = submit_job(
        project=project_a,
        kind="test.fail",
        params={"message": "disk on fire"},
        enqueue=False,
        actor=None,
    )
    finished = run_job_inline(job)
    assert finished.status == "failed"
    assert finished.error == "ValueError: disk on fire"
    assert "Traceback" not in finished.error and finished.result is None
    assert finished.attempts == 1 and CALLS["test.fail"] == 1


def test_job_failed_carries_a_plain_message(project_a):
    job = submit_job(
        project=project_a,
        kind="test.refuse",
        params={"message": "No LLM configured."},
        enqueue=False,
        actor=None,
    )
    assert run_job_inline(job).error == "No LLM configured."


def test_transient_errors_are_retried_with_backoff_until_success(project_a, settings):
    settings.ENGRAMIA_JOB_RETRY_BACKOFF_SECONDS = 0.05
    CALLS.clear()
    job = submit_job(
        project=project_a, kind="test.flaky", params={"succeed_on": 3}, enqueue=False, actor=None
    )
    finished = run_job_inline(job)
    assert finished.status == "succeeded" and finished.result == {"succeeded_on": 3}
    assert finished.attempts == 3 and CALLS["test.flaky"] == 3
    assert finished.error == ""


def test_transient_errors_give_up_after_max_attempts(project_a, settings):
    settings.ENGRAMIA_JOB_RETRY_BACKOFF_SECONDS = 0
    job = submit_job(
        project=project_a, kind="test.flaky", params={"succeed_on": 99}, enqueue=False, actor=None
    )
    finished = run_job_inline(job)
    assert finished.status == "failed" and finished.attempts == 3
    assert finished.error == "not yet (attempt 3) (gave up after 3 attempts)"


def test_a_transient_failure_waits_pending_with_the_reason(project_a):
    job = submit_job(
        project=project_a,
        kind="test.flaky",
        params={"succeed_on": 2, "retry_after": 60},
        enqueue=False,
        actor=None,
    )
    after = run_job(job.pk)
    job.refresh_from_db()
    assert after == "pending" and job.attempts == 1
    assert 55 < (job.requeue_at - timezone.now()).total_seconds() <= 60
    assert job.error == "Attempt 1 of 3 failed: not yet (attempt 1); retrying in 60.0 s."
    # A duplicate delivery during the backoff does not run it early.
    assert run_job(job.pk) == "pending"
    job.refresh_from_db()
    assert job.attempts == 1


def test_run_job_is_quiet_for_missing_and_finished_jobs(project_a):
    CALLS.clear()
    assert run_job(987654321) is None
    job = submit_job(project=project_a, kind="test.echo", params={}, enqueue=False, actor=None)
    assert run_job(job.pk) == "succeeded"
    first = Job.objects.get(pk=job.pk)
    # django-q2 redelivering the message (a worker died after finishing) must not run it again.
    assert run_job(job.pk) == "succeeded"
    again = Job.objects.get(pk=job.pk)
    assert CALLS["test.echo"] == 1
    assert (again.attempts, again.finished_at, again.result) == (1, first.finished_at, first.result)


def test_run_job_leaves_a_job_alone_while_another_worker_is_alive(make_job):
    CALLS.clear()
    job = make_job("test.echo", status="running", attempts=1, ago=0.1, worker="elsewhere:1")
    assert run_job(job.pk) == "running"
    job.refresh_from_db()
    assert job.attempts == 1 and job.worker == "elsewhere:1" and CALLS["test.echo"] == 0


def test_run_job_takes_over_a_job_whose_worker_died(make_job):
    job = make_job("test.echo", status="running", attempts=1, ago=600, worker="dead:1")
    assert run_job(job.pk) == "succeeded"
    job.refresh_from_db()
    assert job.attempts == 2 and job.worker != "dead:1"


def test_a_cancelled_pending_job_never_runs(project_a):
    CALLS.clear()
    job = submit_job(project=project_a, kind="test.echo", params={}, enqueue=False, actor=None)
    cancelled = cancel_job(job, actor=None)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    assert run_job(job.pk) == "cancelled"
    assert CALLS["test.echo"] == 0 and Job.objects.get(pk=job.pk).attempts == 0


def test_a_running_job_stops_at_its_next_checkpoint(make_job):
    job = make_job("test.slow", status="pending", params={"steps": 5, "delay": 0})
    job.cancel_requested = True  # asked to stop while it was already claimed
    job.save()
    assert run_job(job.pk) == "cancelled"


def test_cancel_refuses_finished_jobs(make_job):
    with pytest.raises(JobNotCancellable):
        cancel_job(make_job(status="failed"), actor=None)


def test_an_unserialisable_result_fails_the_job(project_a):
    job = submit_job(
        project=project_a, kind="test.bad_result", params={}, enqueue=False, actor=None
    )
    finished = run_job_inline(job)
    assert finished.status == "failed" and "JSON-serialisable" in finished.error


def test_a_kind_missing_on_the_worker_fails_with_a_reason(make_job):
    job = make_job("retired.kind")
    assert run_job(job.pk) == "failed"
    job.refresh_from_db()
    assert "no job kind 'retired.kind'" in job.error and job.attempts == 0
