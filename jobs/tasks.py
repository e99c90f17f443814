"""django-q2 entry points: ids in, services out."""

from __future__ import annotations

from jobs.runner import execute_job
from jobs.services import recover_stale_jobs


def run_job(job_id: int) -> str | None:
    """Run one attempt of a job; quietly nothing if it is gone, finished or running elsewhere."""
    job = execute_job(job_id)
    return job.status if job is not None else None


def sweep_jobs() -> dict[str, list[int]]:
    """Recover jobs of dead workers and queue due retries (also run by every qcluster)."""
    report = recover_stale_jobs()
    return {
        "requeued": report.requeued,
        "failed": report.failed,
        "cancelled": report.cancelled,
        "queued": report.queued,
    }
