"""Pattern curation and document admin; actions call services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from unfold.admin import ModelAdmin, TabularInline

from memory.models import Document, Evaluation, Pattern
from memory.services import run_aging, update_pattern
from retrieval.admin_filters import EvalRangeFilter
from tenants.admin_scope import ScopedAdminMixin, ScopedRelatedFilter


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


@admin.register(Pattern)
class PatternAdmin(ScopedAdminMixin, ModelAdmin):
    """Curation of learned patterns."""

    list_display = [
        "id",
        "short_task",
        "project",
        "source",
        "eval_score",
        "eval_count",
        "archived",
        "created_at",
    ]
    list_display_links = ["id", "short_task"]
    list_filter = [
        "archived",
        "source",
        EvalRangeFilter,
        ("project", ScopedRelatedFilter),
        "embedding_model",
    ]
    list_select_related = ["project", "project__tenant"]
    search_fields = ["task", "code", "run_id", "external_id"]
    readonly_fields = [
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
    fields = ["task", "code", "output", "metadata", "archived", *readonly_fields]
    inlines = [EvaluationInline]
    actions = ["archive_patterns", "unarchive_patterns", "apply_aging"]
    list_per_page = 50

    def get_queryset(self, request: HttpRequest) -> QuerySet[Pattern]:
        return super().get_queryset(request).defer("embedding")

    @admin.display(description="task")
    def short_task(self, pattern: Pattern) -> str:
        return pattern.task[:90]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # patterns are learned through the API, the SDK or an import

    def save_model(self, request: HttpRequest, obj: Pattern, form: Any, change: bool) -> None:
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        update_pattern(pattern=obj, changes=changes, actor=request.user)

    @admin.action(description="Archive selected patterns")
    def archive_patterns(self, request: HttpRequest, queryset: QuerySet[Pattern]) -> None:
        for pattern in queryset:
            update_pattern(pattern=pattern, changes={"archived": True}, actor=request.user)
        self.message_user(request, f"Archived {queryset.count()} pattern(s).")

    @admin.action(description="Unarchive selected patterns")
    def unarchive_patterns(self, request: HttpRequest, queryset: QuerySet[Pattern]) -> None:
        for pattern in queryset:
            update_pattern(pattern=pattern, changes={"archived": False}, actor=request.user)
        self.message_user(request, f"Unarchived {queryset.count()} pattern(s).")

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
