"""Audit registration of jobs: creation, cancellation and every status change are logged."""

from auditlog.registry import auditlog

from jobs.models import Job


def register_job_model() -> None:
    """Log job changes, leaving out the fields that change every second or hold bulk data."""
    auditlog.register(
        Job,
        exclude_fields=[
            # progress, liveness and resume state change constantly and say nothing about who did
            "progress_done",
            "progress_total",
            "heartbeat_at",
            "checkpoint",
            "requeue_at",
            "worker",
            # results and parameters may be large or hold user content; the job row keeps them
            "result",
            "params",
        ],
    )
