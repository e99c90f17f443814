"""django-q2 entry points: ids in, services out."""

from __future__ import annotations

from jobs.runner import execute_job


def run_job(job_id: int) -> str | None:
    """Run one attempt of a job; quietly nothing if it is gone, finished or running elsewhere."""
    job = execute_job(job_id)
    return job.status if job is not None else None
