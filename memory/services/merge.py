"""Merging near-duplicate patterns: keep the better one, carry the evaluations over."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from engramia_site.errors import InvalidInput
from engramia_site.request_context import audited
from memory.models import Evaluation, Pattern
from memory.services.evaluations import refresh_eval_score


def _better_first(pattern: Pattern) -> tuple[Any, ...]:
    """Sort key, best first: live, rated, higher score, more evaluations, then the older one."""
    return (
        pattern.archived,
        pattern.eval_score is None,
        -(pattern.eval_score or 0.0),
        -pattern.eval_count,
        pattern.created_at,
        pattern.pk,
    )


@audited
@transaction.atomic
def merge_patterns(*, patterns: Sequence[Pattern], actor: Any) -> Pattern:
    """Keep the best of near-duplicate patterns of one project; move the others' evaluations to
    it and archive them (each noting `merged_into` in its metadata). Returns the kept pattern."""
    ids = sorted({pattern.pk for pattern in patterns})
    if len(ids) < 2:
        raise InvalidInput("Choose at least two different patterns to merge.", field="patterns")
    locked = list(
        Pattern.objects.select_for_update()
        .select_related("project")
        .defer("embedding")
        .filter(pk__in=ids)
        .order_by("pk")
    )
    if len(locked) != len(ids):
        raise InvalidInput("A pattern to merge no longer exists.", field="patterns")
    if len({pattern.project_id for pattern in locked}) != 1:
        raise InvalidInput("Only patterns of the same project can be merged.", field="patterns")
    keep, *others = sorted(locked, key=_better_first)
    for evaluation in Evaluation.objects.filter(pattern__in=others).select_related("pattern"):
        evaluation.pattern = keep
        evaluation.save(update_fields=["pattern"])  # audited, one entry per moved evaluation
    for other in others:
        other.archived = True
        other.metadata = {**(other.metadata or {}), "merged_into": keep.pk}
        other.save(update_fields=["archived", "metadata", "updated_at"])
        refresh_eval_score(other)
    refresh_eval_score(keep)
    keep.refresh_from_db()
    return keep
