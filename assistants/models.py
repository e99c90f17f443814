"""What the Assistants toolkit stores: uploaded exports waiting for their import job."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from tenants.models import Project


class ImportUpload(models.Model):
    """An uploaded export waiting for (or being processed by) its import job."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    data = models.BinaryField()
    size = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"upload {self.pk} ({self.size} bytes)"
