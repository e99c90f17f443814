"""The registry of job kinds and the handler's context (progress, checkpoints, cancellation)."""

from __future__ import annotations

import pytest

from jobs.context import JobContext
from jobs.exceptions import JobCancelled, JobSuperseded
from jobs.registry import get_job_kind, import_job_modules, job_kind, job_kinds
from jobs.runner import describe_error, retry_delay


def test_a_kind_name_cannot_be_taken_by_another_handler():
    with pytest.raises(ValueError, match="already registered"):

        @job_kind("test.echo")
        def impostor(job, ctx):
            return {}


def test_re_registering_the_same_handler_is_harmless():
    kind = get_job_kind("test.echo")
    job_kind("test.echo", timeout=30)(kind.handler)
    assert get_job_kind("test.echo").handler is kind.handler


@pytest.mark.parametrize("arguments", [{"timeout": 0}, {"max_attempts": 0}, {"max_attempts": 101}])
def test_kind_limits_are_validated(arguments):
    with pytest.raises(ValueError):
        job_kind("test.invalid", **arguments)


def test_a_kind_without_a_timeout_uses_the_clusters(settings):
    job_kind("test.untimed")(lambda job, ctx: {})
    assert get_job_kind("test.untimed").time_limit == settings.Q_CLUSTER["timeout"]


def test_extra_kind_modules_come_from_the_environment(settings, monkeypatch):
    monkeypatch.delattr(settings, "ENGRAMIA_JOB_MODULES", raising=False)
    monkeypatch.setenv("ENGRAMIA_JOB_MODULES", "tests.jobs.kinds, json")
    import_job_modules()
    assert "test.bulk_groups" in job_kinds()
    monkeypatch.setenv("ENGRAMIA_JOB_MODULES", "tests.jobs.no_such_module")
    with pytest.raises(ImportError):
        import_job_modules()


def test_progress_is_cheap_and_checkpoints_survive(make_job, django_assert_max_num_queries):
    job = make_job("test.bulk_groups", status="running", attempts=1)
    ctx = JobContext(job)
    with django_assert_max_num_queries(2):
        for number in range(1000):
            ctx.progress(number + 1, 1000)
            ctx.checkpoint({"next": number + 1})
    ctx.flush()
    job.refresh_from_db()
    assert (job.progress_done, job.progress_total, job.checkpoint) == (1000, 1000, {"next": 1000})
    assert JobContext(job).checkpoint_data == {"next": 1000}


def test_a_checkpoint_stops_a_job_whose_cancel_was_requested(make_job):
    job = make_job("test.slow", status="running", attempts=1)
    ctx = JobContext(job)
    ctx.checkpoint({"next": 1})  # not yet requested
    job.__class__.objects.filter(pk=job.pk).update(cancel_requested=True)
    with pytest.raises(JobCancelled):
        ctx.checkpoint({"next": 2}, force=True)
    job.refresh_from_db()
    assert job.checkpoint == {"next": 2}


def test_an_attempt_that_lost_its_job_stops_writing(make_job):
    job = make_job("test.slow", status="running", attempts=1)
    ctx = JobContext(job)
    job.__class__.objects.filter(pk=job.pk).update(attempts=2)  # another worker took over
    ctx.progress(5, 10)
    with pytest.raises(JobSuperseded):
        ctx.flush()
    job.refresh_from_db()
    assert job.progress_done == 0


def test_checkpoints_must_be_json(make_job):
    ctx = JobContext(make_job(status="running", attempts=1))
    with pytest.raises(ValueError, match="JSON"):
        ctx.checkpoint({"cursor": object()})


def test_errors_are_one_line_messages_never_tracebacks():
    from rest_framework import exceptions

    assert describe_error(KeyError("x")) == "KeyError: 'x'"
    assert describe_error(RuntimeError()) == "RuntimeError"
    detail = exceptions.ValidationError({"pattern_id": ["No such pattern in this project."]})
    assert describe_error(detail) == "ValidationError: pattern_id: No such pattern in this project."
    assert len(describe_error(ValueError("x" * 10000))) == 4000


def test_retry_delays_grow_exponentially_up_to_a_cap(settings):
    settings.ENGRAMIA_JOB_RETRY_BACKOFF_SECONDS = 10
    assert 8 <= retry_delay(1) <= 12 and 32 <= retry_delay(3) <= 48
    assert retry_delay(30) == 600
    assert retry_delay(1, requested=3) == 3
