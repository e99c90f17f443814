"""Job querysets: project scope and role (inherited) plus the engine's own selections."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q

from jobs.choices import TERMINAL_STATUSES, JobStatus
from tenants.querysets import ProjectScopedQuerySet


class JobQuerySet(ProjectScopedQuerySet):
    """Jobs; restrict(user, action) and for_project() come from the project-scoped base."""

    def active(self) -> JobQuerySet:
        """Jobs that have not reached a final state."""
        return self.exclude(status__in=TERMINAL_STATUSES)

    def finished(self) -> JobQuerySet:
        """Jobs in a final state."""
        return self.filter(status__in=TERMINAL_STATUSES)

    def stale(self, silent_since: datetime) -> JobQuerySet:
        """Running jobs whose worker has not been heard from since silent_since."""
        return self.filter(status=JobStatus.RUNNING).filter(
            Q(heartbeat_at__lt=silent_since)
            | Q(heartbeat_at__isnull=True, started_at__lt=silent_since)
        )

    def due_for_queue(self, now: datetime) -> JobQuerySet:
        """Pending jobs waiting (retry backoff, unreachable broker) to be put on the queue."""
        return self.filter(status=JobStatus.PENDING, requeue_at__lte=now)
