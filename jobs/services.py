"""Every write to jobs: submit, cancel, run inline, and recover the jobs of dead workers."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from engramia_site.request_context import acting_as, audited, current_context
from jobs.choices import JobStatus
from jobs.conf import stale_seconds
from jobs.context import json_snapshot
from jobs.exceptions import JobNotCancellable, JobNotRetryable, UnknownJobKind
from jobs.models import Job, Upload
from jobs.registry import get_job_kind
from jobs.runner import execute_job, settle_abandoned
from tenants.models import Project

logger = logging.getLogger("jobs")

RUN_TASK = "jobs.tasks.run_job"
RECOVERY_BATCH = 100
# Successful django-q2 task results the sweep keeps (the console's "Successful tasks"); the Job
# rows are the record of what ran, and are kept regardless.
TASK_RESULTS_KEPT = 1000
BROKER_RETRY_SECONDS = 30  # when the broker refused a job, try queueing it again after this


def _enqueue(job: Job) -> None:
    """Put one attempt of job on the django-q2 queue, with the kind's time limit."""
    try:
        limit = get_job_kind(job.kind).time_limit
    except UnknownJobKind:
        limit = None  # the worker will fail it with a clear reason
    options: dict[str, Any] = {"task_name": f"job-{job.pk}"}
    if limit is not None:
        options["timeout"] = limit
    async_task(RUN_TASK, job.pk, **options)


def _enqueue_after_commit(job: Job) -> None:
    # Not read again: a job cancelled or deleted meanwhile is skipped by the worker (run_job).
    try:
        _enqueue(job)
    except Exception:
        # The row is durable; the sweeper of any worker cluster queues it once the broker is back.
        logger.exception("could not queue job %s; it will be queued by the next sweep", job.pk)
        Job.objects.filter(pk=job.pk, status=JobStatus.PENDING).update(
            requeue_at=timezone.now() + timedelta(seconds=BROKER_RETRY_SECONDS)
        )


def _user_or_none(candidate: Any) -> Any:
    if candidate is None or not getattr(candidate, "is_authenticated", False):
        return None
    return candidate if getattr(candidate, "pk", None) else None


@audited
def submit_job(
    *,
    project: Project,
    kind: str,
    params: dict[str, Any] | None = None,
    actor: Any,
    enqueue: bool = True,
) -> Job:
    """Record a pending job of a registered kind and queue it once the transaction commits.

    The job runs as actor (None: no user); the acting context's API key name, label and request
    id are copied so the job's audit entries name the same principal. Pass enqueue=False to run
    it yourself with run_job_inline().
    """
    job = new_job(project=project, kind=kind, params=params, actor=actor)
    # Inside a caller's transaction no savepoint: a failure here fails the caller's too.
    with transaction.atomic(savepoint=False):
        job.save(force_insert=True)
        if enqueue:
            queue_after_commit(job)
    return job


def new_job(*, project: Project, kind: str, params: dict[str, Any] | None, actor: Any) -> Job:
    """The pending job submit_job stores (unsaved), for writers that insert it themselves.

    Whoever inserts it must also write its audit entry and call queue_after_commit. Such an
    insert sends no post_save: SDK local mode's job runner (engramia.local_jobs) then finds the
    job at its next poll rather than at once.
    """
    job_kind = get_job_kind(kind)
    context = current_context()
    return Job(
        project=project,
        kind=kind,
        params=json_snapshot(params if params is not None else {}, "job params"),
        max_attempts=job_kind.max_attempts,
        actor=_user_or_none(actor),
        actor_label=(context.label if context else "")[:200],
        api_key_name=(context.api_key_name if context else "")[:100],
        request_id=(context.request_id if context else "")[:64],
    )


def queue_after_commit(job: Job) -> None:
    """Put a stored pending job on the broker once the current transaction commits (now,
    outside one)."""
    transaction.on_commit(partial(_enqueue_after_commit, job))


def hold(job: Job) -> Job:
    """Mark an unsaved job to be queued later by its writer (`release_held`), not at commit.

    A writer that answers first and queues after (a streamed run's learning job, queued once
    the client has its `done`) stores the job like this. Should its process die in between,
    the row says when the sweeper is to queue it, BROKER_RETRY_SECONDS on; a worker will not
    start it before that, or before `release_held` clears the mark.
    """
    job.requeue_at = timezone.now() + timedelta(seconds=BROKER_RETRY_SECONDS)
    return job


def release_held(job: Job) -> bool:
    """Queue a stored held job now (False: it was queued, started or ended meanwhile).

    The mark is cleared in the transaction that queues it (with the ORM broker the message
    commits with it): if the broker refuses, the mark stays and the sweeper queues the job
    when it is due.
    """
    if job.requeue_at is None:
        return False  # never held
    try:
        with transaction.atomic():
            released = Job.objects.filter(
                pk=job.pk, status=JobStatus.PENDING, requeue_at=job.requeue_at
            ).update(requeue_at=None)
            if released:
                _enqueue(job)
    except Exception:
        logger.exception("could not queue job %s; it will be queued by the next sweep", job.pk)
        return False
    return bool(released)


@audited
def submit_with_upload(
    *, project: Project, kind: str, content: bytes, params: dict[str, Any], actor: Any
) -> Job:
    """Store content in an Upload row and submit the job that reads it (`upload_id` in params).

    The job reads it with `job_upload` and deletes it once done or refused for good.
    """
    with transaction.atomic():
        upload = Upload.objects.create(project=project, data=content, size=len(content))
        return submit_job(
            project=project, kind=kind, params={**params, "upload_id": upload.pk}, actor=actor
        )


def job_upload(job: Job) -> Upload | None:
    """The content a job was submitted with (submit_with_upload), None when it is gone."""
    upload_id = (job.params or {}).get("upload_id")
    if upload_id is None:
        return None
    return Upload.objects.filter(pk=upload_id, project_id=job.project_id).first()


@audited
def cancel_job(job: Job, *, actor: Any) -> Job:
    """Cancel a pending job now, or ask a running one to stop at its next checkpoint."""
    with transaction.atomic():
        locked = (
            Job.objects.select_for_update(of=("self",)).select_related("project").get(pk=job.pk)
        )
        if locked.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            raise JobNotCancellable(f"The job has already {locked.status}.")
        if locked.status == JobStatus.PENDING:
            locked.status = JobStatus.CANCELLED
            locked.cancel_requested = True
            locked.finished_at = timezone.now()
            locked.requeue_at = None
            locked.save(update_fields=["status", "cancel_requested", "finished_at", "requeue_at"])
        elif locked.status == JobStatus.RUNNING and not locked.cancel_requested:
            locked.cancel_requested = True
            locked.save(update_fields=["cancel_requested"])
    return locked


@audited
def retry_job(job: Job, *, actor: Any) -> Job:
    """Run a failed or cancelled job again: a new job of the same kind, project and params."""
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise JobNotRetryable(
            f"The job is {job.status}: only failed or cancelled jobs are retried."
        )
    return submit_job(project=job.project, kind=job.kind, params=dict(job.params), actor=actor)


def run_job_inline(job: Job) -> Job:
    """Run a job in this process until it ends (retries wait out their backoff here).

    No time limit applies in-process. Returns the job as it is afterwards: usually finished, or
    still running if a worker took it first.
    """
    while True:
        current = execute_job(job.pk)
        if current is None:
            raise Job.DoesNotExist(f"job {job.pk} no longer exists")
        if current.status != JobStatus.PENDING or current.requeue_at is None:
            return current
        wait = (current.requeue_at - timezone.now()).total_seconds()
        time.sleep(max(wait, 0) + 0.01)


@dataclass
class RecoveryReport:
    """What one sweep did."""

    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.requeued or self.failed or self.cancelled or self.queued)


def recover_stale_jobs() -> RecoveryReport:
    """Settle running jobs whose worker went silent, then queue pending jobs that are due.

    A silent job is retried (it resumes from its checkpoint), or failed with the reason once
    its attempts or time limit are used up, or cancelled if that was requested. Every worker
    cluster runs this at start and every ENGRAMIA_JOB_SWEEP_SECONDS; rows are claimed with
    SKIP LOCKED, so concurrent sweeps never handle a job twice.
    """
    report = RecoveryReport()
    with acting_as(label="jobs:recovery"):
        cutoff = timezone.now() - timedelta(seconds=stale_seconds())
        while True:
            with transaction.atomic():
                now = timezone.now()
                stale = list(
                    Job.objects.stale(cutoff)
                    .select_for_update(of=("self",), skip_locked=True)
                    .select_related("project")
                    .order_by("id")[:RECOVERY_BATCH]
                )
                for job in stale:
                    outcome = settle_abandoned(job, now)
                    {
                        JobStatus.PENDING: report.requeued,
                        JobStatus.FAILED: report.failed,
                        JobStatus.CANCELLED: report.cancelled,
                    }[outcome].append(job.pk)
                    logger.warning("job %s had a dead worker: now %s", job.pk, outcome)
            if len(stale) < RECOVERY_BATCH:
                break
        while True:
            with transaction.atomic():
                due = list(
                    Job.objects.due_for_queue(timezone.now())
                    .select_for_update(skip_locked=True)
                    .order_by("requeue_at", "id")[:RECOVERY_BATCH]
                )
                for job in due:
                    # With the ORM broker the message commits with this transaction; with Redis
                    # a failed commit leaves a spare message, which run_job ignores.
                    _enqueue(job)
                Job.objects.filter(pk__in=[job.pk for job in due]).update(requeue_at=None)
                report.queued.extend(job.pk for job in due)
            if len(due) < RECOVERY_BATCH:
                break
    return report


def prune_task_results(keep: int | None = None) -> int:
    """Delete all but the newest `keep` (TASK_RESULTS_KEPT) successful django-q2 task results;
    how many went.

    django-q2 does this itself after every task, by reading every kept result (settings
    Q_CLUSTER save_limit 0 turns that off): one statement a sweep costs far less.
    """
    from django_q.models import Success

    kept = TASK_RESULTS_KEPT if keep is None else keep
    newest = Success.objects.order_by("-stopped", "-id").values("pk")[:kept]
    deleted, _ = Success.objects.exclude(pk__in=newest).delete()
    return deleted
