"""Aging: decay eval weight with the age of its evidence, archive stale low-value patterns.

Decay is a pure function of age, stored rounded; a second run at the same moment (or minutes
later) finds nothing to change.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from engramia_site.request_context import audited
from memory.models import Pattern
from retrieval.ranking import decayed_eval_score
from tenants.models import Project

ARCHIVE_BELOW_SCORE = 3.0
ARCHIVE_AFTER_DAYS = 365
CHANGE_TOLERANCE = 0.01
BATCH = 1000


@audited
def run_aging(
    *, project: Project | None = None, now: datetime | None = None, actor: Any
) -> dict[str, int]:
    """Apply decay to every evaluated pattern (of one project, or all); returns counts."""
    now = now or timezone.now()
    queryset = Pattern.objects.live().filter(eval_score__isnull=False)
    if project is not None:
        queryset = queryset.filter(project_id=project.pk)
    decayed = archived = 0
    stale_before = now - timedelta(days=ARCHIVE_AFTER_DAYS)
    rows = queryset.only(
        "id", "eval_score", "decayed_eval_score", "last_evaluated_at", "created_at"
    )
    for pattern in rows.iterator(chunk_size=BATCH):
        evidence_time = pattern.last_evaluated_at or pattern.created_at
        age_days = max(0.0, (now - evidence_time).total_seconds() / 86400.0)
        value = decayed_eval_score(pattern.eval_score, age_days)
        previous = pattern.decayed_eval_score
        if value is not None and (previous is None or abs(previous - value) >= CHANGE_TOLERANCE):
            Pattern.objects.filter(pk=pattern.pk).update(decayed_eval_score=value)
            decayed += 1
        if (
            pattern.eval_score is not None
            and pattern.eval_score < ARCHIVE_BELOW_SCORE
            and evidence_time < stale_before
        ):
            with transaction.atomic():
                full = Pattern.objects.select_related("project").get(pk=pattern.pk)
                full.archived = True
                full.save(update_fields=["archived", "updated_at"])  # audited
            archived += 1
    return {"decayed": decayed, "archived": archived}
