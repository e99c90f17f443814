"""Pattern list filters: source, stale, and "similar to …" (a semantic search through recall)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.http import HttpRequest
from django.utils import timezone
from unfold.contrib.filters.admin import TextFilter

from memory.services.recall import recall_patterns
from retrieval.ranking import EVAL_DECAY_HALF_LIFE_DAYS
from tenants.models import Project

# How many of the user's projects a "similar to" search asks, and how many matches each.
SIMILAR_PROJECTS = 20
SIMILAR_MATCHES = 50
STALE_AFTER_DAYS = int(EVAL_DECAY_HALF_LIFE_DAYS)


class SourceFilter(TextFilter):
    """Patterns of one source (api, import, …): typed, so the page never lists distinct values."""

    title = "source"
    parameter_name = "source"

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = (self.value() or "").strip()
        return queryset.filter(source=value) if value else queryset


class StaleFilter(admin.SimpleListFilter):
    """Patterns whose evidence (last evaluation, else creation) is older than a half-life."""

    title = "staleness"
    parameter_name = "stale"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("stale", f"Stale (no evaluation in {STALE_AFTER_DAYS} days)"),
            ("fresh", f"Evaluated in the last {STALE_AFTER_DAYS} days"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        cutoff = timezone.now() - timedelta(days=STALE_AFTER_DAYS)
        stale = Q(last_evaluated_at__lt=cutoff) | Q(
            last_evaluated_at__isnull=True, created_at__lt=cutoff
        )
        if self.value() == "stale":
            return queryset.filter(stale)
        if self.value() == "fresh":
            return queryset.exclude(stale)
        return queryset


def similar_ranking(request: HttpRequest, text: str) -> list[int]:
    """Pattern ids most useful for text, best first, over the user's projects (or the one chosen).

    Each project is asked through recall itself, so the order is the order recall would give.
    """
    projects = Project.objects.restrict(request.user, "view").order_by("pk")
    chosen = request.GET.get("project__id__exact")
    if chosen and chosen.isdigit():
        projects = projects.filter(pk=int(chosen))
    scored: list[tuple[float, int]] = []
    for project in projects[:SIMILAR_PROJECTS]:
        for match in recall_patterns(project=project, task=text, limit=SIMILAR_MATCHES).matches:
            scored.append((match.score, match.pattern_id))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [pattern_id for _, pattern_id in scored]


class SimilarToFilter(TextFilter):
    """ "Similar to …": the live patterns recall ranks for a text, in recall's order."""

    title = "similar to"
    parameter_name = "similar"

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        text = (self.value() or "").strip()
        if not text:
            return queryset
        ranking = similar_ranking(request, text[:2000])
        if not ranking:
            return queryset.none().annotate(similar_rank=Value(0, output_field=IntegerField()))
        order = Case(
            *(When(pk=pattern_id, then=Value(rank)) for rank, pattern_id in enumerate(ranking)),
            output_field=IntegerField(),
        )
        return queryset.filter(pk__in=ranking).annotate(similar_rank=order)
