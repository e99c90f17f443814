"""Run one attempt of a job: claim it, call its handler as its actor, record the outcome.

Every transition is a locked read-modify-save, so it is audited and two workers can never both
own an attempt: a job runs when it is pending, or when it is running but its worker has gone
silent (killed). Anything else (gone, finished, alive elsewhere, waiting out a backoff) is a
quiet no-op, which makes duplicate deliveries from the queue harmless.
"""

from __future__ import annotations

import logging
import os
import random
import socket
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django_q.exceptions import TimeoutException

from engramia_site.errors import (
    DependencyUnavailable,
    DomainError,
    InvalidInput,
    NotConfigured,
)
from engramia_site.request_context import acting_as
from jobs.choices import JobStatus
from jobs.conf import (
    MAX_RETRY_BACKOFF_SECONDS,
    default_timeout_seconds,
    heartbeat_seconds,
    retry_backoff_seconds,
    stale_seconds,
)
from jobs.context import Heartbeat, JobContext, json_snapshot
from jobs.exceptions import (
    JobCancelled,
    JobError,
    JobFailed,
    JobSuperseded,
    TransientJobError,
    UnknownJobKind,
)
from jobs.models import Job
from jobs.registry import JobKind, get_job_kind

logger = logging.getLogger("jobs")

MAX_ERROR_LENGTH = 4000
FINAL_FIELDS = [
    "status",
    "result",
    "error",
    "finished_at",
    "heartbeat_at",
    "progress_done",
    "progress_total",
    "checkpoint",
    "requeue_at",
]


def worker_name() -> str:
    """Where this attempt runs: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


def describe_error(exc: BaseException) -> str:
    """A one-line, user-facing description of a failure (never a traceback)."""
    detail = getattr(exc, "detail", None)  # DRF APIException: a message, list or dict of them
    message = _flatten_detail(detail) if detail is not None else str(exc).strip()
    if not isinstance(exc, JobError):
        message = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    message = message or "The job failed."
    return message if len(message) <= MAX_ERROR_LENGTH else message[: MAX_ERROR_LENGTH - 1] + "…"


def _flatten_detail(detail: Any, prefix: str = "") -> str:
    if isinstance(detail, dict):
        return "; ".join(
            _flatten_detail(value, f"{key}: " if key not in ("detail", "non_field_errors") else "")
            for key, value in detail.items()
        )
    if isinstance(detail, list):
        return "; ".join(_flatten_detail(item, prefix) for item in detail)
    return f"{prefix}{detail}"


def _time_limit(job: Job) -> int:
    try:
        return get_job_kind(job.kind).time_limit
    except UnknownJobKind:
        return default_timeout_seconds()


def is_abandoned(job: Job, now: datetime) -> bool:
    """True when a running job's worker has been silent for longer than the stale threshold."""
    last_sign = job.heartbeat_at or job.started_at
    return last_sign is None or last_sign < now - timedelta(seconds=stale_seconds())


def settle_abandoned(job: Job, now: datetime) -> JobStatus:
    """Decide the fate of a locked running job whose worker died: retry, fail or cancel it."""
    last_sign = job.heartbeat_at or job.started_at or now
    limit = _time_limit(job)
    if job.cancel_requested:
        _save_final(job, JobStatus.CANCELLED, now=now)
    elif job.started_at is not None and last_sign - job.started_at >= timedelta(seconds=limit):
        _save_final(
            job,
            JobStatus.FAILED,
            now=now,
            error=f"The job exceeded its time limit of {limit} s and its worker was stopped.",
        )
    elif job.attempts >= job.max_attempts:
        _save_final(
            job,
            JobStatus.FAILED,
            now=now,
            error=(
                f"The worker running attempt {job.attempts} of {job.max_attempts} stopped "
                f"responding (last heard from at {last_sign:%Y-%m-%d %H:%M:%S} UTC) and no "
                "attempts remain."
            ),
        )
    else:
        job.status = JobStatus.PENDING
        job.requeue_at = now
        job.worker = ""
        job.error = (
            f"Attempt {job.attempts} of {job.max_attempts} was interrupted: its worker stopped "
            f"responding (last heard from at {last_sign:%Y-%m-%d %H:%M:%S} UTC); retrying."
        )
        job.save(update_fields=["status", "requeue_at", "worker", "error"])
    return JobStatus(job.status)


def _save_final(
    job: Job, status: JobStatus, *, now: datetime, result: Any = None, error: str = ""
) -> None:
    job.status = status
    job.result = result
    job.error = error
    job.finished_at = now
    job.heartbeat_at = now
    job.requeue_at = None
    if status == JobStatus.SUCCEEDED:
        job.checkpoint = None  # only needed to resume
    job.save(update_fields=FINAL_FIELDS)


def _lock(job_id: int) -> Job | None:
    return (
        Job.objects.select_for_update(of=("self",))
        .select_related("project", "actor")
        .filter(pk=job_id)
        .first()
    )


def claim_job(job_id: int) -> tuple[Job, JobKind] | None:
    """Start a new attempt of the job if it is runnable now; None when there is nothing to do."""
    now = timezone.now()
    with transaction.atomic():
        job = _lock(job_id)
        if job is None or job.is_finished:
            return None
        if job.status == JobStatus.RUNNING:
            if not is_abandoned(job, now):
                return None  # alive in another worker
            if settle_abandoned(job, now) != JobStatus.PENDING:
                return None
        if job.requeue_at is not None and job.requeue_at > now:
            return None  # waiting out a retry backoff; the sweeper queues it when due
        if job.cancel_requested:
            _save_final(job, JobStatus.CANCELLED, now=now)
            return None
        if job.attempts >= job.max_attempts:
            _save_final(
                job,
                JobStatus.FAILED,
                now=now,
                error=job.error or f"All {job.max_attempts} attempts were used.",
            )
            return None
        try:
            kind = get_job_kind(job.kind)
        except UnknownJobKind as exc:
            _save_final(
                job,
                JobStatus.FAILED,
                now=now,
                error=f"{exc}; is the app that registers it installed on the workers?",
            )
            return None
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.started_at = now
        job.heartbeat_at = now
        job.finished_at = None
        job.requeue_at = None
        job.worker = worker_name()
        job.error = ""  # a previous attempt's reason for retrying; the audit log keeps it
        job.save(
            update_fields=[
                "status",
                "attempts",
                "started_at",
                "heartbeat_at",
                "finished_at",
                "requeue_at",
                "worker",
                "error",
            ]
        )
        return job, kind


def _finish(ctx: JobContext, status: JobStatus, *, result: Any = None, error: str = "") -> None:
    """Record the outcome of this attempt, unless the job was taken away from it meanwhile."""
    now = timezone.now()
    with transaction.atomic():
        job = _lock(ctx.job_id)
        if job is None or job.status != JobStatus.RUNNING or job.attempts != ctx.attempt:
            logger.warning(
                "job %s attempt %s lost the job; outcome dropped", ctx.job_id, ctx.attempt
            )
            return
        for field, value in ctx.pending_fields().items():
            setattr(job, field, value)
        _save_final(job, status, now=now, result=result, error=error)


def retry_delay(attempt: int, requested: float | None = None) -> float:
    """Seconds before the next attempt: exponential backoff with jitter, or what was asked."""
    if requested is not None:
        return min(max(requested, 0.0), MAX_RETRY_BACKOFF_SECONDS)
    delay = retry_backoff_seconds() * 2 ** min(max(attempt - 1, 0), 30)
    return min(delay * random.uniform(0.8, 1.2), MAX_RETRY_BACKOFF_SECONDS)


def _retry_or_fail(ctx: JobContext, exc: TransientJobError) -> None:
    now = timezone.now()
    message = describe_error(exc)
    with transaction.atomic():
        job = _lock(ctx.job_id)
        if job is None or job.status != JobStatus.RUNNING or job.attempts != ctx.attempt:
            return
        for field, value in ctx.pending_fields().items():
            setattr(job, field, value)
        if job.attempts >= job.max_attempts:
            _save_final(
                job,
                JobStatus.FAILED,
                now=now,
                error=f"{message} (gave up after {job.attempts} attempts)",
            )
            return
        delay = retry_delay(job.attempts, exc.retry_after)
        job.status = JobStatus.PENDING
        job.requeue_at = now + timedelta(seconds=delay)
        job.heartbeat_at = now
        job.worker = ""
        job.error = (
            f"Attempt {job.attempts} of {job.max_attempts} failed: {message}; "
            f"retrying in {delay:.1f} s."
        )
        job.save(
            update_fields=[
                "status",
                "requeue_at",
                "heartbeat_at",
                "worker",
                "error",
                "progress_done",
                "progress_total",
                "checkpoint",
            ]
        )


def _field_messages(errors: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, first message) of each field of a validation error's detail."""
    pairs: list[tuple[str, str]] = []
    for name, value in errors.items():
        while isinstance(value, list | tuple) and value:
            value = value[0]
        if isinstance(value, dict) and value:
            pairs.extend((f"{name}.{inner}", text) for inner, text in _field_messages(value))
        else:
            pairs.append((name, str(value)))
    return pairs


def _settle_domain_error(ctx: JobContext, exc: DomainError) -> None:
    """A service's refusal: a dependency that may come back is retried, anything else fails."""
    if isinstance(exc, DependencyUnavailable) and not isinstance(exc, NotConfigured):
        logger.info("job %s attempt %s: %s", ctx.job_id, ctx.attempt, exc.public_message)
        _retry_or_fail(ctx, TransientJobError(exc.public_message))
        return
    message = exc.public_message
    if isinstance(exc, InvalidInput):
        fields = "; ".join(
            f"{name}: {detail}" if name != "non_field_errors" else str(detail)
            for name, detail in _field_messages(exc.errors)
        )
        message = f"invalid input: {fields or message}"
    _finish(ctx, JobStatus.FAILED, error=describe_error(JobFailed(message)))


def _run_attempt(job: Job, kind: JobKind) -> None:
    ctx = JobContext(job)
    try:
        with Heartbeat(job.pk, job.attempts, heartbeat_seconds()):
            result = kind.handler(job, ctx)
        result = json_snapshot(result, "a job's result")
    except JobSuperseded:
        logger.warning("job %s attempt %s was taken over; stopping it", job.pk, ctx.attempt)
    except JobCancelled:
        _finish(ctx, JobStatus.CANCELLED)
    except TransientJobError as exc:
        logger.info("job %s attempt %s: transient failure: %s", job.pk, ctx.attempt, exc)
        _retry_or_fail(ctx, exc)
    except DomainError as exc:
        _settle_domain_error(ctx, exc)
    except TimeoutException:
        # The alarm may have interrupted a query mid-flight: record the failure on a new connection.
        if not connection.in_atomic_block:
            connection.close()
        _finish(
            ctx,
            JobStatus.FAILED,
            error=f"The job exceeded its time limit of {kind.time_limit} s.",
        )
    except Exception as exc:
        logger.exception("job %s (%s) attempt %s failed", job.pk, job.kind, ctx.attempt)
        _finish(ctx, JobStatus.FAILED, error=describe_error(exc))
    else:
        _finish(ctx, JobStatus.SUCCEEDED, result=result)


def execute_job(job_id: int) -> Job | None:
    """Run one attempt of the job if it is runnable; return its state afterwards (None if gone)."""
    job = Job.objects.select_related("actor").filter(pk=job_id).first()
    if job is None:
        logger.info("job %s no longer exists; nothing to run", job_id)
        return None
    if job.is_finished:
        return job
    with acting_as(
        job.actor,
        api_key_name=job.api_key_name,
        label=job.actor_label or f"job:{job.kind}",
        request_id=job.request_id or None,
    ):
        claimed = claim_job(job_id)
        if claimed is not None:
            _run_attempt(*claimed)
    return Job.objects.filter(pk=job_id).first()
