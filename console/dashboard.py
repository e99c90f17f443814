"""The dashboard: what memory holds and how it is used, over the projects a user may see.

Every number is read through the user's scope (`restrict(user, "view")`, the audit admin's own
queryset for events), one aggregate query per panel, so the page costs a fixed number of queries
whatever the size of memory. Pattern counts read the `pattern_stats` index only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import Floor, TruncDate
from django.http import HttpRequest
from django.utils import timezone

from jobs.choices import JobStatus
from jobs.models import Job
from memory.models import Evaluation, Pattern, RecallStat
from memory.recall_stats import flush_recall_counts
from tenants.models import AuditEntry, Project

DAYS = 30
TOP_FEEDBACK = 5
RECENT_EVENTS = 10
PER_PROJECT_ROWS = 20


class ScopeForm(forms.Form):
    """Which of the user's projects the dashboard shows (blank: all of them)."""

    project = forms.ModelChoiceField(queryset=Project.objects.none(), required=False)

    def __init__(self, *args: Any, projects: QuerySet[Project], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["project"]
        field.queryset = projects  # type: ignore[attr-defined]
        field.empty_label = "All my projects"  # type: ignore[attr-defined]


@dataclass
class Dashboard:
    """The dashboard's numbers for one user and scope."""

    live: int = 0
    archived: int = 0
    unrated: int = 0
    learned_per_day: list[tuple[date, int]] = field(default_factory=list)
    recalls_per_day: list[tuple[date, int]] = field(default_factory=list)
    score_histogram: list[int] = field(default_factory=lambda: [0] * 11)
    top_feedback: list[dict[str, Any]] = field(default_factory=list)
    jobs_running: int = 0
    jobs_failed: int = 0
    projects: list[dict[str, Any]] = field(default_factory=list)
    recent_events: list[AuditEntry] = field(default_factory=list)

    @property
    def unrated_share(self) -> int:
        """Unrated live patterns, in percent."""
        return round(100 * self.unrated / self.live) if self.live else 0

    @property
    def learned_total(self) -> int:
        return sum(n for _, n in self.learned_per_day)

    @property
    def recalls_total(self) -> int:
        return sum(n for _, n in self.recalls_per_day)


def _days(today: date) -> list[date]:
    return [today - timedelta(days=offset) for offset in range(DAYS - 1, -1, -1)]


def _per_day(rows: QuerySet[Any], today: date) -> list[tuple[date, int]]:
    counts = {row["day"]: row["n"] for row in rows}
    return [(day, counts.get(day, 0)) for day in _days(today)]


def dashboard_stats(
    *, projects: QuerySet[Project], request: HttpRequest, chosen: Project | None = None
) -> Dashboard:
    """The numbers of the given projects (already restricted to what the user may see)."""
    today = timezone.now().date()
    since = timezone.now() - timedelta(days=DAYS - 1)
    since = since.replace(hour=0, minute=0, second=0, microsecond=0)
    ids = projects.values("id")
    patterns = Pattern.objects.filter(project_id__in=ids)
    stats = Dashboard()
    per_project = list(
        patterns.values("project_id")
        .annotate(
            n_live=Count("project_id", filter=Q(archived=False)),
            n_archived=Count("project_id", filter=Q(archived=True)),
            n_unrated=Count("project_id", filter=Q(archived=False, eval_score__isnull=True)),
        )
        .order_by("-n_live", "project_id")
    )
    stats.live = sum(row["n_live"] for row in per_project)
    stats.archived = sum(row["n_archived"] for row in per_project)
    stats.unrated = sum(row["n_unrated"] for row in per_project)
    names = {p.pk: p.path for p in projects.select_related("tenant")}
    stats.projects = [
        {**row, "path": names.get(row["project_id"], "?")} for row in per_project[:PER_PROJECT_ROWS]
    ]
    learned = (
        patterns.filter(learned_at__gte=since)
        .annotate(day=TruncDate("learned_at"))
        .values("day")
        .annotate(n=Count("project_id"))
    )
    stats.learned_per_day = _per_day(learned, today)
    recalls = (
        RecallStat.objects.filter(project_id__in=ids, day__gte=since.date())
        .values("day")
        .annotate(n=Sum("count"))
    )
    stats.recalls_per_day = _per_day(recalls, today)
    buckets = (
        patterns.filter(archived=False, eval_score__isnull=False)
        .annotate(bucket=Floor(F("eval_score")))
        .values("bucket")
        .annotate(n=Count("project_id"))
    )
    for row in buckets:
        stats.score_histogram[min(10, max(0, int(row["bucket"])))] += row["n"]
    stats.top_feedback = _top_feedback(ids)
    jobs = Job.objects.filter(project_id__in=ids).aggregate(
        running=Count("id", filter=Q(status=JobStatus.RUNNING)),
        failed=Count("id", filter=Q(status=JobStatus.FAILED)),
    )
    stats.jobs_running, stats.jobs_failed = jobs["running"], jobs["failed"]
    stats.recent_events = _recent_events(request, chosen)
    return stats


def _top_feedback(ids: QuerySet[Project, Any]) -> list[dict[str, Any]]:
    """The judge's most frequent feedback keys over the projects' patterns."""
    return [
        dict(row)
        for row in Evaluation.objects.filter(
            pattern__project_id__in=ids, evaluator__startswith="llm:"
        )
        .exclude(feedback_key="")
        .values("feedback_key")
        .annotate(count=Count("id"))
        .order_by("-count", "feedback_key")[:TOP_FEEDBACK]
    ]


def _recent_events(request: HttpRequest, chosen: Project | None) -> list[AuditEntry]:
    """The newest audit entries, as the audit admin scopes them (of one project when chosen)."""
    entries = admin.site._registry[AuditEntry].get_queryset(request)
    if chosen is not None:
        entries = entries.filter(project_id=chosen.pk)
    return list(entries.select_related("actor").order_by("-timestamp")[:RECENT_EVENTS])


def _chart(labels: list[str], label: str, values: list[int]) -> str:
    return json.dumps({"labels": labels, "datasets": [{"label": label, "data": values}]})


def dashboard_context(request: HttpRequest) -> dict[str, Any]:
    """The dashboard's template context for the request's user."""
    flush_recall_counts()  # this process's recalls, not yet written by its flusher
    visible = Project.objects.restrict(request.user, "view").select_related("tenant")
    form = ScopeForm(request.GET or None, projects=visible)
    chosen = form.cleaned_data["project"] if form.is_valid() else None
    projects = visible.filter(pk=chosen.pk) if chosen is not None else visible
    stats = dashboard_stats(projects=projects, request=request, chosen=chosen)
    day_labels = [day.strftime("%b %d") for day in _days(timezone.now().date())]
    return {
        "scope_form": form,
        "stats": stats,
        "learned_chart": _chart(day_labels, "learned", [n for _, n in stats.learned_per_day]),
        "recalls_chart": _chart(day_labels, "recalls", [n for _, n in stats.recalls_per_day]),
        "score_chart": _chart(
            [f"{n}" for n in range(11)], "live patterns", list(stats.score_histogram)
        ),
    }
