"""Project metrics for GET /v1/metrics."""

from __future__ import annotations

from typing import Any

from django.db.models import Avg, Count, Q

from memory.models import Document, Pattern
from tenants.models import Project


def project_metrics(project: Project) -> dict[str, Any]:
    """Counts and averages of the project's memory, in two queries."""
    stats = Pattern.objects.for_project(project).aggregate(
        pattern_count=Count("id", filter=Q(archived=False)),
        archived_count=Count("id", filter=Q(archived=True)),
        evaluated_count=Count("id", filter=Q(archived=False, eval_score__isnull=False)),
        avg_eval_score=Avg("eval_score", filter=Q(archived=False)),
    )
    by_source = dict(
        Pattern.objects.live()
        .for_project(project)
        .values_list("source")
        .annotate(n=Count("id"))
        .values_list("source", "n")
    )
    avg = stats["avg_eval_score"]
    return {
        **stats,
        "avg_eval_score": round(avg, 3) if avg is not None else None,
        "document_count": Document.objects.for_project(project).count(),
        "by_source": by_source,
        "embedding_model": project.embedding_model,
    }
