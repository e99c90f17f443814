"""Session items: one conversation's input items, in order, scoped to a project."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone

from tenants.models import Project


class SessionItem(models.Model):
    """One item (message, tool call, tool output…) of an Agents SDK session, at a position."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="session_items")
    session_id = models.CharField(max_length=255)
    position = models.BigIntegerField(help_text="order within the session, from 1")
    item = models.JSONField(help_text="the Agents SDK input item, as JSON")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["project", "session_id", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "session_id", "position"],
                name="session_item_position_unique",
            )
        ]
        indexes = [
            # The unique index serves per-session reads in both directions; this one serves
            # listing a project's recent conversation activity (admin, retention).
            models.Index(fields=["project", "-created_at"], name="session_item_recent"),
        ]

    def __str__(self) -> str:
        return f"session {self.session_id} #{self.position}"

    @property
    def role(self) -> str:
        """The item's role or type, for display."""
        item = self.item if isinstance(self.item, dict) else {}
        return str(item.get("role") or item.get("type") or "")

    def get_additional_data(self) -> dict[str, Any]:
        return {
            "tenant_id": self.project.tenant_id,
            "project_id": self.project_id,
            "session_id": self.session_id,
        }
