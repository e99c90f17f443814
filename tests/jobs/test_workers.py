"""Jobs run by a real `engramia qcluster` worker process against the test database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django_q.models import OrmQ

from jobs.models import Job
from jobs.services import submit_job
from tenants.models import AuditEntry
from tests.jobs.conftest import Worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def worker(django_db_setup: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """One single-process cluster shared by this module's tests (each waits for its own jobs)."""
    started = Worker(tmp_path_factory.mktemp("qcluster") / "worker.log")
    yield started
    started.stop()


def finished(job: Job, worker: Worker, timeout: float = 30) -> Job:
    """Poll the job until it ends."""
    return wait_for(
        lambda: (current := Job.objects.get(pk=job.pk)).is_finished and current,
        timeout=timeout,
        what=f"job {job.pk} ({job.kind}) to finish",
        log=worker.log_tail,
    )


@pytest.mark.urls("tests.jobs.urls")
def test_submit_poll_succeed_as_the_submitter(worker, editor):
    client = editor.client()
    response = client.post(
        "/v1/test-echo",
        {"greeting": "hi"},
        format="json",
        HTTP_PREFER="respond-async",
        HTTP_X_REQUEST_ID="req-worker-1",
    )
    assert response.status_code == 202
    location = response["Location"]

    def poll() -> Any:
        body = client.get(location).json()
        return body if body["status"] in ("succeeded", "failed", "cancelled") else None

    body = wait_for(poll, timeout=30, what="the job to finish", log=worker.log_tail)
    assert body["status"] == "succeeded", body["error"]
    assert body["result"] == {
        "echo": {"greeting": "hi"},
        "actor": editor.user.email,
        "api_key_name": editor.key.name,
        "request_id": "req-worker-1",
    }
    assert body["progress"] == {"done": 1, "total": 1} and body["attempts"] == 1
    assert body["error"] is None and body["started_at"] and body["finished_at"]
    # The worker's own audit entries name the submitter and the submitting request.
    done = AuditEntry.objects.get(
        content_type__model="job",
        object_pk=str(body["id"]),
        changes__status=["running", "succeeded"],
    )
    assert done.actor == editor.user and done.cid == "req-worker-1"
    assert done.project_id == editor.project.pk


def test_a_job_worker_skips_the_objects_loaded_before_the_fork_when_collecting(worker, project_a):
    job = submit_job(project=project_a, kind="test.process", params={}, actor=None)
    result = finished(job, worker)
    assert result.status == "succeeded", result.error
    # Frozen before the cluster forked (engramia_site.gc_freeze): Django and the rest.
    assert result.result["frozen_objects"] > 50_000


def test_a_failing_job_ends_failed_with_its_error(worker, project_a):
    job = submit_job(project=project_a, kind="test.fail", params={"message": "kaput"}, actor=None)
    result = finished(job, worker)
    assert result.status == "failed" and result.error == "ValueError: kaput"
    assert result.attempts == 1 and result.result is None  # a bug is not retried


def test_a_transient_error_is_retried_with_backoff_then_succeeds(worker, project_a):
    job = submit_job(project=project_a, kind="test.flaky", params={"succeed_on": 3}, actor=None)
    result = finished(job, worker)
    assert result.status == "succeeded", result.error
    assert result.attempts == 3 and result.result == {"succeeded_on": 3} and result.error == ""


def test_a_quiet_job_is_kept_alive_by_its_heartbeat_not_taken_for_dead(worker, project_a):
    # Longer than ENGRAMIA_JOB_STALE_SECONDS (1.5 s) without a single progress report.
    job = submit_job(project=project_a, kind="test.quiet", params={"seconds": 3}, actor=None)
    result = finished(job, worker)
    assert result.status == "succeeded" and result.attempts == 1
    assert result.result == {"attempt": 1}


def test_a_job_past_its_time_limit_fails(worker, project_a):
    job = submit_job(project=project_a, kind="test.sleepy", params={"seconds": 30}, actor=None)
    result = finished(job, worker, timeout=20)
    assert result.status == "failed"
    assert result.error == "The job exceeded its time limit of 1 s."
    # The worker survives its timeout and keeps serving.
    assert (
        finished(
            submit_job(project=project_a, kind="test.echo", params={}, actor=None), worker
        ).status
        == "succeeded"
    )


def test_cancelling_a_running_job_stops_it_at_its_next_checkpoint(worker, editor):
    job = submit_job(
        project=editor.project, kind="test.slow", params={"steps": 200, "delay": 0.05}, actor=None
    )
    wait_for(
        lambda: Job.objects.get(pk=job.pk).progress_done >= 3,
        timeout=30,
        what="the slow job to make progress",
        log=worker.log_tail,
    )
    response = editor.client().post(f"/v1/jobs/{job.pk}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "running"
    result = finished(job, worker, timeout=10)
    assert result.status == "cancelled"
    assert 3 <= result.progress_done < 200 and result.finished_at


def test_cancelling_a_queued_job_means_it_never_runs(worker, editor):
    busy = submit_job(
        project=editor.project, kind="test.slow", params={"steps": 200, "delay": 0.05}, actor=None
    )
    wait_for(
        lambda: Job.objects.get(pk=busy.pk).status == "running",
        timeout=30,
        what="the worker to be busy",
        log=worker.log_tail,
    )
    queued = submit_job(project=editor.project, kind="test.echo", params={}, actor=None)
    assert editor.client().post(f"/v1/jobs/{queued.pk}/cancel").json()["status"] == "cancelled"
    editor.client().post(f"/v1/jobs/{busy.pk}/cancel")
    assert finished(busy, worker).status == "cancelled"
    # The cancelled job's message is still delivered; the worker must drop it.
    wait_for(
        lambda: not OrmQ.objects.exists(),
        timeout=20,
        what="the queue to drain",
        log=worker.log_tail,
    )
    queued.refresh_from_db()
    assert queued.status == "cancelled" and queued.attempts == 0 and queued.started_at is None
    assert queued.result is None
