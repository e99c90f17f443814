"""Admin for tenants, projects, memberships, API keys and the audit log."""

from __future__ import annotations

from typing import Any

from auditlog.admin import LogEntryAdmin
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from tenants.admin_scope import ScopedAdminMixin
from tenants.models import ApiKey, AuditEntry, Membership, Project, Tenant
from tenants.services import create_api_key, remove_membership, revoke_api_key, set_membership


@admin.register(Tenant)
class TenantAdmin(ScopedAdminMixin, admin.ModelAdmin):
    """Tenants, with their project count in one query."""

    scope_field = "projects__id"
    list_display = ["slug", "name", "project_count", "created_at"]
    search_fields = ["slug", "name"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        return super().get_queryset(request).annotate(project_total=Count("projects")).distinct()

    @admin.display(ordering="project_total", description="projects")
    def project_count(self, tenant: Tenant) -> int:
        return tenant.project_total  # type: ignore[attr-defined]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser


@admin.register(Project)
class ProjectAdmin(ScopedAdminMixin, admin.ModelAdmin):
    """Projects; the read path changes only through the audited cut-over (`engramia cutover`)."""

    scope_field = "id"
    list_display = ["__str__", "name", "read_path", "embedding_model", "llm_provider", "created_at"]
    list_filter = ["read_path", "embedding_model", "llm_provider", "tenant"]
    list_select_related = ["tenant"]
    search_fields = ["slug", "name", "tenant__slug"]
    readonly_fields = ["read_path", "embedding_model", "created_at"]


@admin.register(Membership)
class MembershipAdmin(ScopedAdminMixin, admin.ModelAdmin):
    """Who holds which role where; saving grants the role's permissions."""

    scope_field = "project_id"
    list_display = ["user", "tenant", "project", "role", "created_at"]
    list_filter = ["role", "tenant"]
    list_select_related = ["user", "tenant", "project", "project__tenant"]
    search_fields = ["user__email", "user__username", "tenant__slug", "project__slug"]
    autocomplete_fields = ["user"]

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        if change:
            remove_membership(Membership.objects.get(pk=obj.pk))
        scope = obj.project or obj.tenant
        saved = set_membership(user=obj.user, scope=scope, role=obj.role)
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        remove_membership(obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Membership]:
        return super().get_queryset(request).distinct()


@admin.register(ApiKey)
class ApiKeyAdmin(ScopedAdminMixin, admin.ModelAdmin):
    """API keys: a new key's secret is shown once, after saving; only its hash is kept."""

    scope_field = "project_id"
    list_display = [
        "name",
        "prefix",
        "user",
        "tenant",
        "project",
        "role",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = ["role", "tenant"]
    list_select_related = ["user", "tenant", "project", "project__tenant"]
    search_fields = ["name", "prefix", "user__email"]
    fields = ["user", "tenant", "project", "name", "role", "expires_at"]
    actions = ["revoke_keys"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        return ["user", "tenant", "project", "name", "role", "prefix", "revoked_at", "last_used_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiKey]:
        return super().get_queryset(request).distinct()

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            obj.save(update_fields=["expires_at"])
            return
        issued = create_api_key(
            user=obj.user,
            tenant=obj.tenant,
            project=obj.project,
            name=obj.name,
            role=obj.role,
            expires_at=obj.expires_at,
        )
        obj.pk = issued.key.pk
        messages.warning(
            request,
            f"The new key's secret, shown only this once: {issued.secret}",
        )

    @admin.action(description="Revoke the selected keys")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset:
            revoke_api_key(key, actor=request.user)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")


admin.site.unregister(AuditEntry)


@admin.register(AuditEntry)
class AuditEntryAdmin(ScopedAdminMixin, LogEntryAdmin):
    """The audit log: read-only, filterable by tenant, actor, action, model and date."""

    scope_field = "project_id"
    list_display = [
        "created",
        "tenant",
        "resource_url",
        "action",
        "msg_short",
        "actor_display",
        "cid",
    ]
    list_filter = ["action", "tenant", "content_type", "timestamp", "actor"]
    list_select_related = ["content_type", "actor", "tenant"]
    search_fields = ["object_repr", "actor_email", "api_key_name", "cid"]

    @admin.display(description="actor")
    def actor_display(self, entry: AuditEntry) -> str:
        if entry.api_key_name:
            return f"{entry.actor_email or '-'} (key {entry.api_key_name})"
        return entry.actor_email or "system"

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEntry]:
        return super().get_queryset(request).distinct()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
