"""recover_stale_jobs: jobs of dead workers are retried, failed with a reason, or cancelled."""

from __future__ import annotations

from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone
from django_q.models import OrmQ

from jobs.services import recover_stale_jobs


def queued_job_ids() -> list[int]:
    return sorted(message.task["args"][0] for message in OrmQ.objects.all())


def test_a_silent_running_job_is_requeued_and_keeps_its_checkpoint(make_job, settings):
    settings.ENGRAMIA_JOB_STALE_SECONDS = 30
    job = make_job(
        "test.bulk_groups",
        status="running",
        attempts=1,
        ago=31,
        worker="gone:42",
        checkpoint={"next": 17},
        progress_done=17,
        progress_total=100,
    )
    report = recover_stale_jobs()
    job.refresh_from_db()
    assert report.requeued == [job.pk] and report.queued == [job.pk]
    assert job.status == "pending" and job.requeue_at is None and job.worker == ""
    assert job.checkpoint == {"next": 17} and job.attempts == 1
    assert job.error.startswith("Attempt 1 of 3 was interrupted: its worker stopped responding")
    assert queued_job_ids() == [job.pk]


def test_live_jobs_are_left_alone(make_job, settings):
    settings.ENGRAMIA_JOB_STALE_SECONDS = 30
    alive = make_job(status="running", attempts=1, ago=5)
    pending = make_job(status="pending")
    assert not recover_stale_jobs()
    alive.refresh_from_db()
    pending.refresh_from_db()
    assert alive.status == "running" and pending.status == "pending"
    assert queued_job_ids() == []


def test_a_dead_workers_job_fails_with_a_reason_once_attempts_are_used_up(make_job, settings):
    settings.ENGRAMIA_JOB_STALE_SECONDS = 30
    job = make_job("test.bulk_groups", status="running", attempts=3, max_attempts=3, ago=120)
    report = recover_stale_jobs()
    job.refresh_from_db()
    assert report.failed == [job.pk] and job.status == "failed" and job.finished_at
    assert "stopped responding" in job.error and "no attempts remain" in job.error
    assert queued_job_ids() == []


def test_a_job_killed_at_its_time_limit_is_failed_not_retried(make_job, settings):
    settings.ENGRAMIA_JOB_STALE_SECONDS = 30
    started = timezone.now() - timedelta(seconds=200)
    job = make_job(  # test.slow allows 60 s; its worker beat until 61 s in, then vanished
        "test.slow",
        status="running",
        attempts=1,
        started_at=started,
        heartbeat_at=started + timedelta(seconds=61),
    )
    recover_stale_jobs()
    job.refresh_from_db()
    assert job.status == "failed" and job.error.startswith(
        "The job exceeded its time limit of 60 s"
    )


def test_a_dead_workers_job_that_was_being_cancelled_ends_cancelled(make_job, settings):
    settings.ENGRAMIA_JOB_STALE_SECONDS = 30
    job = make_job(status="running", attempts=1, ago=60, cancel_requested=True)
    assert recover_stale_jobs().cancelled == [job.pk]
    job.refresh_from_db()
    assert job.status == "cancelled"


def test_due_retries_are_queued_and_future_ones_wait(make_job):
    due = make_job(status="pending", attempts=1, requeue_at=timezone.now() - timedelta(seconds=1))
    later = make_job(status="pending", attempts=1, requeue_at=timezone.now() + timedelta(minutes=5))
    assert recover_stale_jobs().queued == [due.pk]
    due.refresh_from_db()
    later.refresh_from_db()
    assert due.requeue_at is None and later.requeue_at is not None
    assert queued_job_ids() == [due.pk]
    assert not recover_stale_jobs()  # a second sweep finds nothing more to do


def test_recover_jobs_command_reports_what_it_did(make_job, settings, capsys):
    settings.ENGRAMIA_JOB_STALE_SECONDS = 30
    make_job(status="running", attempts=1, ago=100)
    call_command("recover_jobs")
    assert capsys.readouterr().out.strip() == "requeued 1, failed 0, cancelled 0, queued 1"


def test_a_held_job_waits_for_its_writer_and_is_queued_once(make_job):
    from jobs.models import Job
    from jobs.runner import execute_job
    from jobs.services import hold, release_held

    job = hold(Job(project=make_job().project, kind="test.echo", params={"value": 1}))
    job.save()
    assert job.requeue_at > timezone.now() + timedelta(seconds=20)
    assert execute_job(job.pk).status == "pending"  # a worker does not start it yet
    assert not recover_stale_jobs().queued  # nor does the sweeper, before it is due
    assert release_held(job) and queued_job_ids() == [job.pk]
    assert Job.objects.filter(pk=job.pk, status="pending", requeue_at=None).exists()
    assert not release_held(job) and queued_job_ids() == [job.pk]  # never queued twice
    assert execute_job(job.pk).status == "succeeded"


def test_a_held_job_whose_writer_died_is_queued_by_the_sweep_when_due(make_job):
    from jobs.models import Job
    from jobs.services import hold, release_held

    job = hold(Job(project=make_job().project, kind="test.echo", params={"value": 1}))
    job.save()
    Job.objects.filter(pk=job.pk).update(requeue_at=timezone.now() - timedelta(seconds=1))
    assert recover_stale_jobs().queued == [job.pk] and queued_job_ids() == [job.pk]
    assert not release_held(job)  # the writer, were it still there, finds it queued already


def test_a_held_job_the_broker_refuses_keeps_its_mark_for_the_sweep(make_job, monkeypatch):
    from jobs import services
    from jobs.models import Job

    job = services.hold(Job(project=make_job().project, kind="test.echo", params={"value": 1}))
    job.save()

    def refuse(job: Job) -> None:
        raise ConnectionError("the broker is down")

    monkeypatch.setattr(services, "_enqueue", refuse)
    assert not services.release_held(job)
    assert Job.objects.get(pk=job.pk).requeue_at == job.requeue_at  # the sweep's to queue
    assert queued_job_ids() == []


def test_a_held_job_cancelled_meanwhile_is_not_queued(make_job):
    from jobs.models import Job
    from jobs.services import cancel_job, hold, release_held

    job = hold(Job(project=make_job().project, kind="test.echo", params={"value": 1}))
    job.save()
    cancel_job(job, actor=None)
    assert not release_held(job) and queued_job_ids() == []
    assert Job.objects.get(pk=job.pk).status == "cancelled"
