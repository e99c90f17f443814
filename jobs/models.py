"""The durable, user-visible record of a slow operation; django-q2 only runs it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone

from engramia_site.json_field import DepthSafeJSONField
from jobs.choices import TERMINAL_STATUSES, JobStatus
from jobs.querysets import JobQuerySet


class Job(models.Model):
    """One run of a registered job kind in a project, with its progress, result or error."""

    project = models.ForeignKey("tenants.Project", on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING)
    params = DepthSafeJSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    progress_done = models.PositiveBigIntegerField(default=0)
    progress_total = models.PositiveBigIntegerField(null=True, blank=True)
    result = DepthSafeJSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    # What the handler saved to resume from; kept across attempts.
    checkpoint = DepthSafeJSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    cancel_requested = models.BooleanField(default=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_label = models.CharField(max_length=200, blank=True, default="")
    api_key_name = models.CharField(max_length=100, blank=True, default="")
    request_id = models.CharField(max_length=64, blank=True, default="")
    worker = models.CharField(
        max_length=200, blank=True, default="", help_text="host and pid of the latest attempt"
    )
    # Set while a pending job has no message on the queue (retry backoff, broker unreachable).
    requeue_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["project", "-created_at"], name="job_project_created"),
            models.Index(fields=["status"], name="job_status"),
            models.Index(
                fields=["requeue_at"], name="job_requeue_at", condition=Q(requeue_at__isnull=False)
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_attempts__gte=1), name="job_max_attempts_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        """True once the job is succeeded, failed or cancelled."""
        return self.status in TERMINAL_STATUSES

    def get_additional_data(self) -> dict[str, Any]:
        from tenants.models import Project

        try:
            tenant_id = self.project.tenant_id
        except Project.DoesNotExist:  # deleted along with its project
            tenant_id = None
        return {"tenant_id": tenant_id, "project_id": self.project_id}


class Upload(models.Model):
    """Content a job reads, stored apart from its params: an uploaded export, a document."""

    project = models.ForeignKey("tenants.Project", on_delete=models.CASCADE, related_name="+")
    data = models.BinaryField()
    size = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"upload {self.pk} ({self.size} bytes)"
