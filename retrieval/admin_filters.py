"""Admin list filters shared by the curation admins."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest


class EvalRangeFilter(admin.SimpleListFilter):
    """Filter by eval score band (patterns, skills: any model with eval_score), or unrated."""

    title = "eval score"
    parameter_name = "eval"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("unrated", "Unrated"), ("low", "0-3"), ("mid", "3-7"), ("high", "7-10")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == "unrated":
            return queryset.filter(eval_score__isnull=True)
        bands = {"low": (0, 3), "mid": (3, 7), "high": (7, 10.01)}
        if value in bands:
            low, high = bands[value]
            return queryset.filter(eval_score__gte=low, eval_score__lt=high)
        return queryset
