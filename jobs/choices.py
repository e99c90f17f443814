"""States of a job."""

from __future__ import annotations

from django.db import models


class JobStatus(models.TextChoices):
    """pending → running → succeeded | failed | cancelled; a retry puts running back to pending."""

    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
