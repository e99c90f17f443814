"""Skill curation: filters by visibility, tenant and eval; publish actions call services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from unfold.admin import ModelAdmin, TabularInline

from retrieval.admin_filters import EvalRangeFilter
from skills.admin_display import (
    anthropic_tool_json,
    openai_tool_json,
    parameters_table,
    version_diffs,
    visibility_history,
)
from skills.choices import Visibility
from skills.models import Skill, SkillEvaluation, SkillUsage, SkillVersion
from skills.services import (
    SkillNameTaken,
    delete_skill,
    publish_skill,
    unpublish_skill,
    update_skill,
)
from tenants.admin_scope import ScopedAdminMixin, ScopedRelatedFilter
from tenants.choices import Role


class _ReadOnlyInline(TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The parent admin already scoped obj to the user's projects; no model perms needed.
        return bool(request.user.is_active and request.user.is_staff)


class SkillEvaluationInline(_ReadOnlyInline):
    """A skill's evaluations, newest first; evaluators from other tenants stay anonymous."""

    model = SkillEvaluation
    fields = readonly_fields = (
        "created_at",
        "score",
        "version",
        "evaluator",
        "feedback",
        "evaluated_from",
    )
    ordering = ["-created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[SkillEvaluation]:
        return super().get_queryset(request).select_related("skill", "project", "project__tenant")

    @admin.display(description="from")
    def evaluated_from(self, evaluation: SkillEvaluation) -> str:
        if evaluation.project.tenant_id != evaluation.skill.tenant_id:
            return "another tenant"
        return evaluation.project.path


class SkillUsageInline(_ReadOnlyInline):
    """The memory patterns of the owner's tenant whose solutions used this skill."""

    model = SkillUsage
    fields = readonly_fields = (
        "pattern",
        "used_in",
        "created_at",
    )
    verbose_name_plural = "used by patterns"

    def get_queryset(self, request: HttpRequest) -> QuerySet[SkillUsage]:
        return super().get_queryset(request).select_related("project", "project__tenant")

    @admin.display(description="pattern")
    def pattern(self, usage: SkillUsage) -> str:
        try:
            url = reverse("admin:memory_pattern_change", args=[usage.pattern_id])
        except NoReverseMatch:
            return str(usage.pattern_id)
        return format_html('<a href="{}">pattern {}</a>', url, usage.pattern_id)

    @admin.display(description="project")
    def used_in(self, usage: SkillUsage) -> str:
        return usage.project.path


class SkillVersionInline(_ReadOnlyInline):
    """Every version of the skill's interface, newest first."""

    model = SkillVersion
    fields = readonly_fields = (
        "version",
        "created_at",
        "description",
        "parameters",
    )
    ordering = ["-version"]


@admin.register(Skill)
class SkillAdmin(ScopedAdminMixin, ModelAdmin):
    """Curation of the skill registry; a tenant-owned skill needs the role on the whole tenant."""

    tenant_field = "tenant_id"

    list_display = [
        "name",
        "tenant",
        "project",
        "visibility",
        "version",
        "eval_score",
        "evaluation_count",
        "usage_count",
        "source",
        "updated_at",
    ]
    list_filter = [
        "visibility",
        ("tenant", ScopedRelatedFilter),
        EvalRangeFilter,
        "source",
        "embedding_model",
    ]
    list_select_related = ["tenant", "project", "project__tenant"]
    search_fields = ["name", "description", "tags"]
    fieldsets = [
        (None, {"fields": ["name", "description", "parameters", "tags", "visibility"]}),
        ("Parameters", {"classes": ["tab"], "fields": ["parameters_readable"]}),
        ("Versions", {"classes": ["tab"], "fields": ["version_history"]}),
        ("Visibility", {"classes": ["tab"], "fields": ["visibility_changes"]}),
        ("Exports", {"classes": ["tab"], "fields": ["openai_tool", "anthropic_tool"]}),
        (
            "Provenance",
            {
                "classes": ["tab"],
                "fields": [
                    "tenant",
                    "project",
                    "version",
                    "source",
                    "eval_score",
                    "evaluation_count",
                    "embedding_model",
                    "created_by",
                    "created_at",
                    "updated_at",
                ],
            },
        ),
    ]
    readonly_fields = [
        "parameters_readable",
        "version_history",
        "visibility_changes",
        "openai_tool",
        "anthropic_tool",
        "tenant",
        "project",
        "version",
        "source",
        "eval_score",
        "evaluation_count",
        "embedding_model",
        "created_by",
        "created_at",
        "updated_at",
    ]
    inlines = [SkillVersionInline, SkillEvaluationInline, SkillUsageInline]
    actions = ["publish_public", "publish_tenant", "unpublish"]
    list_per_page = 50

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # Ownership, not visibility: staff curate their own skills, not other tenants' public ones.
        queryset = super().get_queryset(request)
        return queryset.annotate(usage_total=Count("usages")).defer("embedding")

    def get_formset_kwargs(
        self, request: HttpRequest, obj: Any, inline: Any, prefix: str
    ) -> dict[str, Any]:
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, SkillUsageInline) and obj is not None:
            # A public skill's users in other tenants are theirs to know about, not the owner's.
            kwargs["queryset"] = kwargs["queryset"].filter(project__tenant_id=obj.tenant_id)
        return kwargs

    @admin.display(description="parameters")
    def parameters_readable(self, skill: Skill) -> SafeString:
        return parameters_table(skill)

    @admin.display(description="changes between versions")
    def version_history(self, skill: Skill) -> SafeString:
        return version_diffs(skill)

    @admin.display(description="visibility changes")
    def visibility_changes(self, skill: Skill) -> SafeString:
        return visibility_history(skill)

    @admin.display(description="OpenAI tool")
    def openai_tool(self, skill: Skill) -> SafeString:
        return openai_tool_json(skill)

    @admin.display(description="Anthropic tool")
    def anthropic_tool(self, skill: Skill) -> SafeString:
        return anthropic_tool_json(skill)

    @admin.display(ordering="usage_total", description="used by")
    def usage_count(self, skill: Skill) -> int:
        return skill.usage_total  # type: ignore[attr-defined]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # skills are registered through the API, the SDK or an Assistants import

    def save_model(self, request: HttpRequest, obj: Skill, form: Any, change: bool) -> None:
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        original = Skill.objects.get(pk=obj.pk)
        try:
            update_skill(actor=request.user, skill=original, **changes)
        except SkillNameTaken as exc:
            messages.error(request, str(exc))

    def delete_model(self, request: HttpRequest, obj: Skill) -> None:
        delete_skill(actor=request.user, skill=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Skill]) -> None:
        for skill in queryset:
            delete_skill(actor=request.user, skill=skill)

    def _change_visibility(
        self, request: HttpRequest, queryset: QuerySet[Skill], visibility: Visibility | None
    ) -> None:
        changed, refused = 0, 0
        for skill in queryset:
            if not self._may_change(request, skill):
                refused += 1
                continue
            try:
                if visibility is None:
                    unpublish_skill(actor=request.user, skill=skill)
                else:
                    publish_skill(actor=request.user, skill=skill, visibility=visibility)
            except ValidationError:
                refused += 1
                continue
            changed += 1
        self.message_user(request, f"Changed the visibility of {changed} skill(s).")
        if refused:
            self.message_user(
                request, f"{refused} skill(s) need the {Role.ADMIN.value} role.", messages.WARNING
            )

    @admin.action(description="Publish to every tenant")
    def publish_public(self, request: HttpRequest, queryset: QuerySet[Skill]) -> None:
        self._change_visibility(request, queryset, Visibility.PUBLIC)

    @admin.action(description="Publish to the whole tenant")
    def publish_tenant(self, request: HttpRequest, queryset: QuerySet[Skill]) -> None:
        self._change_visibility(request, queryset, Visibility.TENANT)

    @admin.action(description="Unpublish (back to the owner only)")
    def unpublish(self, request: HttpRequest, queryset: QuerySet[Skill]) -> None:
        self._change_visibility(request, queryset, None)
