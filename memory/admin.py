"""Pattern curation and document admin; every change goes through a memory service.

The pattern list stays fast at 100k rows: no full count per page (an estimate above 10k rows),
a fixed number of queries, filters that never list distinct column values. A pattern's page
shows its code highlighted, its evaluation history, its nearest neighbours (merge them in one
click), and takes a human score or queues a judge evaluation.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST
from unfold.admin import ModelAdmin, TabularInline
from unfold.views import ChangeList
from unfold.widgets import UnfoldAdminDecimalFieldWidget
from unfold.widgets import UnfoldAdminTextareaWidget as Textarea

from engramia_site.errors import DomainError
from engramia_site.highlight import highlighted_code
from memory.admin_filters import SimilarToFilter, SourceFilter, StaleFilter
from memory.models import Document, Evaluation, Pattern
from memory.operations import EVALUATE
from memory.services import (
    add_evaluation,
    delete_pattern,
    merge_patterns,
    run_aging,
    update_pattern,
)
from memory.services.recall import nearest_patterns
from retrieval.admin_filters import EvalRangeFilter
from retrieval.choices import EvaluatorKind
from tenants.admin_paging import EstimatedCountPaginator
from tenants.admin_scope import (
    ScopedAdminMixin,
    ScopedModelForm,
    ScopedRelatedFilter,
    VisibleProjectFilter,
)

NEAREST = 5
CHART_EVALUATIONS = 50
EDITABLE = ("task", "code", "output", "metadata", "archived")


class EvaluationInline(TabularInline):
    """A pattern's evaluations, newest first."""

    model = Evaluation
    extra = 0
    fields = ["created_at", "score", "evaluator", "feedback", "actor"]
    readonly_fields = ["created_at", "score", "evaluator", "feedback", "actor"]
    ordering = ["-created_at"]
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PatternForm(ScopedModelForm):
    """The pattern's own fields, code in a monospaced box, and an optional human score."""

    human_score = forms.FloatField(
        min_value=0,
        max_value=10,
        required=False,
        label="Add a human score (0-10)",
        widget=UnfoldAdminDecimalFieldWidget(attrs={"step": "0.5"}),
    )
    human_feedback = forms.CharField(
        required=False, max_length=10_000, widget=Textarea(attrs={"rows": 2})
    )

    class Meta:
        model = Pattern
        fields = "__all__"
        widgets = {
            "code": Textarea(attrs={"class": "eng-mono", "rows": 14, "spellcheck": "false"}),
            "output": Textarea(attrs={"class": "eng-mono", "rows": 4}),
            "task": Textarea(attrs={"rows": 3}),
        }


class SimilarOrderChangeList(ChangeList):
    """The pattern list, in recall's order while "similar to" is searched."""

    def get_ordering(self, request: HttpRequest, queryset: QuerySet[Any]) -> list[Any]:
        if "similar_rank" in queryset.query.annotations:
            return ["similar_rank", "-pk"]  # annotated by SimilarToFilter
        return super().get_ordering(request, queryset)


def _chart(evaluations: list[Evaluation]) -> str:
    data = {
        "labels": [e.created_at.strftime("%Y-%m-%d %H:%M") for e in evaluations],
        "datasets": [{"label": "score", "data": [e.score for e in evaluations]}],
    }
    return json.dumps(data)


@admin.register(Pattern)
class PatternAdmin(ScopedAdminMixin, ModelAdmin):
    """Curation of learned patterns."""

    form = PatternForm
    list_display = [
        "id",
        "short_task",
        "project",
        "source",
        "eval_score",
        "eval_count",
        "archived",
        "learned_at",
    ]
    list_display_links = ["id", "short_task"]
    list_filter = [
        ("project", VisibleProjectFilter),
        "archived",
        SourceFilter,
        EvalRangeFilter,
        StaleFilter,
        SimilarToFilter,
    ]
    list_filter_submit = True  # the text filters (source, similar to) are a form
    list_select_related = ["project", "project__tenant"]
    search_fields = ["task", "=run_id", "=external_id"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50
    provenance = [
        "project",
        "source",
        "run_id",
        "external_id",
        "eval_score",
        "eval_count",
        "last_evaluated_at",
        "decayed_eval_score",
        "embedding_model",
        "created_at",
        "learned_at",
        "updated_at",
    ]
    readonly_fields = [
        *provenance,
        "code_highlighted",
        "evaluation_chart",
        "nearest_patterns",
        "nearest_with_merge",
        "curation_buttons",
    ]
    inlines = [EvaluationInline]
    actions = [
        "merge_selected",
        "reevaluate_selected",
        "archive_patterns",
        "unarchive_patterns",
        "apply_aging",
    ]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        changeable = obj is not None and self.has_change_permission(request, obj)
        scoring = ["human_score", "human_feedback", "curation_buttons"] if changeable else []
        nearest = "nearest_with_merge" if changeable else "nearest_patterns"
        return [
            (None, {"fields": list(EDITABLE)}),
            ("Highlighted code", {"classes": ["tab"], "fields": ["code_highlighted"]}),
            ("Evaluations", {"classes": ["tab"], "fields": ["evaluation_chart", *scoring]}),
            ("Nearest patterns", {"classes": ["tab"], "fields": [nearest]}),
            ("Provenance", {"classes": ["tab"], "fields": self.provenance}),
        ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Pattern]:
        return super().get_queryset(request).defer("embedding")

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return SimilarOrderChangeList

    @admin.display(description="task")
    def short_task(self, pattern: Pattern) -> str:
        return pattern.task[:90]

    @admin.display(description="code")
    def code_highlighted(self, pattern: Pattern) -> SafeString:
        return highlighted_code(pattern.code or "")

    @admin.display(description="score history")
    def evaluation_chart(self, pattern: Pattern) -> SafeString:
        evaluations = list(
            Evaluation.objects.filter(pattern=pattern).order_by("-created_at")[:CHART_EVALUATIONS]
        )[::-1]
        if not evaluations:
            return format_html('<span class="eng-muted">No evaluation yet.</span>')
        chart = render_to_string(
            "unfold/components/chart/line.html", {"data": _chart(evaluations), "height": 140}
        )
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (e.created_at.strftime("%Y-%m-%d %H:%M"), f"{e.score:g}", e.evaluator, e.feedback)
                for e in evaluations[::-1]
            ),
        )
        return format_html(
            '<div class="eng-eval-chart">{}</div><table class="eng-table" id="evaluation-history">'
            "<thead><tr><th>when</th><th>score</th><th>evaluator</th><th>feedback</th></tr>"
            "</thead><tbody>{}</tbody></table>",
            chart,
            rows,
        )

    def _neighbours(self, pattern: Pattern) -> list[tuple[Pattern, float]]:
        vector = Pattern.objects.filter(pk=pattern.pk).values_list("embedding", flat=True).first()
        if vector is None:
            return []
        rows, _ = nearest_patterns(
            pattern.project, pattern.embedding_model, list(vector), NEAREST + 1
        )
        similar = {row.id: 1.0 - row.distance for row in rows if row.id != pattern.pk}
        found = Pattern.objects.defer("embedding").in_bulk(list(similar))
        return [(found[pk], similar[pk]) for pk in similar if pk in found][:NEAREST]

    def _nearest_table(self, pattern: Pattern, *, merge: bool) -> SafeString:
        neighbours = self._neighbours(pattern)
        if not neighbours:
            return mark_safe('<span class="eng-muted">No other live pattern nearby.</span>')
        merge_url = reverse("admin:memory_pattern_merge", args=[pattern.pk])
        button = (
            '<button type="submit" class="eng-button-secondary" formmethod="post" '
            'formaction="{}" formnovalidate name="merge_with" value="{}">Merge</button>'
        )
        rows = format_html_join(
            "",
            '<tr><td><a class="text-link" href="{}">#{}</a> {}</td><td>{}</td><td>{}</td>'
            "<td>{}</td></tr>",
            (
                (
                    reverse("admin:memory_pattern_change", args=[other.pk]),
                    other.pk,
                    other.task[:100],
                    f"{similarity:.3f}",
                    other.eval_score if other.eval_score is not None else "unrated",
                    format_html(button, merge_url, other.pk) if merge else "",
                )
                for other, similarity in neighbours
            ),
        )
        note = (
            '<p class="eng-muted text-xs mt-2">Merge keeps the better of the two (live, then '
            "higher score, more evaluations, older), moves the other's evaluations to it and "
            "archives the other.</p>"
            if merge
            else ""
        )
        return format_html(
            '<table class="eng-table" id="nearest-patterns"><thead><tr><th>pattern</th>'
            "<th>similarity</th><th>eval</th><th></th></tr></thead><tbody>{}</tbody></table>{}",
            rows,
            SafeString(note),
        )

    @admin.display(description="nearest in the project")
    def nearest_patterns(self, pattern: Pattern) -> SafeString:
        return self._nearest_table(pattern, merge=False)

    @admin.display(description="nearest in the project")
    def nearest_with_merge(self, pattern: Pattern) -> SafeString:
        return self._nearest_table(pattern, merge=True)

    @admin.display(description="judge")
    def curation_buttons(self, pattern: Pattern) -> SafeString:
        return format_html(
            '<button type="submit" class="eng-button-secondary" formmethod="post" '
            'formaction="{}" formnovalidate id="reevaluate">Re-evaluate with the judge</button>'
            ' <span class="eng-muted text-xs">queues a job; its score lands here</span>',
            reverse("admin:memory_pattern_reevaluate", args=[pattern.pk]),
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # patterns are learned through the API, the SDK or an import

    def save_model(self, request: HttpRequest, obj: Pattern, form: Any, change: bool) -> None:
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in EDITABLE}
        if changes:
            update_pattern(pattern=obj, changes=changes, actor=request.user)
        score = form.cleaned_data.get("human_score")
        if score is not None:
            add_evaluation(
                pattern=obj,
                score=score,
                evaluator=EvaluatorKind.HUMAN,
                feedback=form.cleaned_data.get("human_feedback") or "",
                actor=request.user,
            )

    def delete_model(self, request: HttpRequest, obj: Pattern) -> None:
        delete_pattern(pattern=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Pattern]) -> None:
        for pattern in queryset:
            delete_pattern(pattern=pattern, actor=request.user)

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/merge/",
                wrap(require_POST(self.merge_view)),
                name="memory_pattern_merge",
            ),
            path(
                "<path:object_id>/reevaluate/",
                wrap(require_POST(self.reevaluate_view)),
                name="memory_pattern_reevaluate",
            ),
            *super().get_urls(),
        ]

    def _changeable_patterns(self, request: HttpRequest, ids: list[str]) -> list[Pattern]:
        """The patterns of ids the user may change (404 if one is not visible, 403 if read-only)."""
        if not all(value.isdigit() for value in ids):
            raise Http404("No such pattern.")
        visible = self.get_queryset(request).filter(pk__in=ids)
        if visible.count() != len(set(ids)):
            raise Http404("No such pattern.")
        allowed = list(self.changeable(request, visible).select_related("project"))
        if len(allowed) != len(set(ids)):
            raise PermissionDenied("Curating these patterns needs the admin role.")
        return allowed

    def merge_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Merge the pattern with the one named by POST merge_with (a near-duplicate)."""
        ids = [object_id, request.POST.get("merge_with", "")]
        kept = self._merge(request, self._changeable_patterns(request, ids))
        target = kept.pk if kept is not None else object_id
        return HttpResponseRedirect(reverse("admin:memory_pattern_change", args=[target]))

    def _merge(self, request: HttpRequest, patterns: list[Pattern]) -> Pattern | None:
        try:
            kept = merge_patterns(patterns=patterns, actor=request.user)
        except DomainError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        merged = ", ".join(f"#{p.pk}" for p in patterns if p.pk != kept.pk)
        self.message_user(
            request, f"Kept #{kept.pk}; merged {merged} into it (evaluations moved, archived)."
        )
        return kept

    def reevaluate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Queue a judge evaluation of the pattern (memory's evaluate operation, as a job)."""
        self._reevaluate(request, self._changeable_patterns(request, [object_id]))
        return HttpResponseRedirect(reverse("admin:memory_pattern_change", args=[object_id]))

    def _reevaluate(self, request: HttpRequest, patterns: list[Pattern]) -> None:
        queued = []
        for pattern in patterns:
            data = {
                "task": pattern.task,
                "code": pattern.code,
                "output": pattern.output,
                "pattern_id": pattern.pk,
            }
            try:
                job = EVALUATE.submit(project=pattern.project, actor=request.user, data=data)
            except DomainError as exc:
                self.message_user(request, f"#{pattern.pk}: {exc}", messages.ERROR)
                continue
            queued.append(f"#{job.pk}")
        if queued:
            self.message_user(
                request, f"Queued {len(queued)} judge evaluation job(s): {', '.join(queued)}."
            )

    @admin.action(description="Merge the selected near-duplicates (keeps the better one)")
    def merge_selected(self, request: HttpRequest, queryset: QuerySet[Pattern]) -> None:
        self._merge(request, list(queryset.select_related("project")))

    @admin.action(description="Re-evaluate the selected patterns with the judge (a job each)")
    def reevaluate_selected(self, request: HttpRequest, queryset: QuerySet[Pattern]) -> None:
        self._reevaluate(request, list(queryset.select_related("project")))

    @admin.action(description="Archive selected patterns")
    def archive_patterns(self, request: HttpRequest, queryset: QuerySet[Pattern]) -> None:
        for pattern in queryset:
            update_pattern(pattern=pattern, changes={"archived": True}, actor=request.user)
        self.message_user(request, f"Archived {queryset.count()} pattern(s).")

    @admin.action(description="Restore (unarchive) selected patterns")
    def unarchive_patterns(self, request: HttpRequest, queryset: QuerySet[Pattern]) -> None:
        for pattern in queryset:
            update_pattern(pattern=pattern, changes={"archived": False}, actor=request.user)
        self.message_user(request, f"Restored {queryset.count()} pattern(s).")

    @admin.action(description="Apply aging to the selected patterns' projects")
    def apply_aging(self, request: HttpRequest, queryset: QuerySet[Pattern]) -> None:
        projects = {pattern.project for pattern in queryset.select_related("project")}
        totals = {"decayed": 0, "archived": 0}
        for project in projects:
            for key, value in run_aging(project=project, actor=request.user).items():
                totals[key] += value
        self.message_user(
            request, f"Aging: {totals['decayed']} decayed, {totals['archived']} archived."
        )


@admin.register(Document)
class DocumentAdmin(ScopedAdminMixin, ModelAdmin):
    """Uploaded documents."""

    list_display = ["name", "project", "content_type", "size", "chunk_count", "created_at"]
    list_filter = ["content_type", ("project", ScopedRelatedFilter)]
    list_select_related = ["project", "project__tenant"]
    search_fields = ["name"]
    readonly_fields = [
        "project",
        "name",
        "content_type",
        "size",
        "chunk_count",
        "external_id",
        "created_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
