"""Admin for tenants, projects, memberships, API keys and the audit log (users: superusers only)."""

from __future__ import annotations

from typing import Any

from auditlog.admin import LogEntryAdmin
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from unfold.admin import ModelAdmin

from tenants.admin_scope import (
    Errors,
    ScopedAdminMixin,
    ScopedRelatedFilter,
    grant_errors,
    restrict_to_superusers,
    tenant_ids_touched,
    tenant_ids_with_role,
)
from tenants.choices import Role
from tenants.models import ApiKey, AuditEntry, Membership, Project, Tenant
from tenants.services import create_api_key, remove_membership, revoke_api_key, set_membership

restrict_to_superusers(get_user_model(), Group)


@admin.register(Tenant)
class TenantAdmin(ScopedAdminMixin, ModelAdmin):
    """Tenants, with their project count in one query; only superusers create or change them."""

    list_display = ["slug", "name", "project_count", "created_at"]
    search_fields = ["slug", "name"]

    def scope_filter(self, user: Any, action: str | Role) -> Q:
        return tenant_ids_touched(user, action)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        return super().get_queryset(request).annotate(project_total=Count("projects"))

    @admin.display(ordering="project_total", description="projects")
    def project_count(self, tenant: Tenant) -> int:
        return tenant.project_total  # type: ignore[attr-defined]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser


@admin.register(Project)
class ProjectAdmin(ScopedAdminMixin, ModelAdmin):
    """Projects; the read path changes only through the audited cut-over (`engramia cutover`).

    Creating a project needs the admin role on its tenant; a project never changes tenant.
    """

    scope_field = "id"
    list_display = ["__str__", "name", "read_path", "embedding_model", "llm_provider", "created_at"]
    list_filter = ["read_path", "embedding_model", "llm_provider", ("tenant", ScopedRelatedFilter)]
    list_select_related = ["tenant"]
    search_fields = ["slug", "name", "tenant__slug"]
    readonly_fields = ["read_path", "embedding_model", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*self.readonly_fields, "tenant"] if obj is not None else list(self.readonly_fields)

    def has_add_permission(self, request: HttpRequest) -> bool:
        if request.user.is_superuser:
            return True
        staff = request.user.is_active and request.user.is_staff
        return bool(staff and tenant_ids_with_role(request.user, Role.ADMIN).exists())

    def choices_for(self, db_field: Any, request: HttpRequest) -> QuerySet[Any]:
        if db_field.related_model is Tenant:
            return Tenant.objects.filter(id__in=tenant_ids_with_role(request.user, Role.ADMIN))
        return super().choices_for(db_field, request)

    def target_errors(self, request: HttpRequest, obj: Project) -> Errors:
        if obj.pk is not None:
            original = Project.objects.get(pk=obj.pk)
            if original.tenant_id != obj.tenant_id:
                return {"tenant": "A project never moves to another tenant."}
            return {}
        if not tenant_ids_with_role(request.user, Role.ADMIN).filter(
            content_object_id=obj.tenant_id
        ):
            return {"tenant": "Creating a project needs the admin role on its tenant."}
        return {}


@admin.register(Membership)
class MembershipAdmin(ScopedAdminMixin, ModelAdmin):
    """Who holds which role where; saving grants the role's permissions.

    Staff need the admin role where they grant (on the tenant for a tenant-wide membership) and may
    grant at most their own role there, so only owners make owners. The user must be someone they
    may manage: themselves, or a user who already holds a membership in a project they administer
    (any project of a tenant they administer). Adding a user new to the tenant is for superusers,
    so no staff member can reach, or hand a role to, another tenant's people. A membership's user
    and place never change; its role may, within the same caps.
    """

    tenant_field = "tenant_id"
    checks_each_object = True
    list_display = ["user", "tenant", "project", "role", "created_at"]
    list_filter = ["role", ("tenant", ScopedRelatedFilter), ("project", ScopedRelatedFilter)]
    list_select_related = ["user", "tenant", "project", "project__tenant"]
    search_fields = ["user__email", "user__username", "tenant__slug", "project__slug"]
    autocomplete_fields = ["user"]

    def get_autocomplete_fields(self, request: HttpRequest) -> list[str]:
        # The user autocomplete is the superuser-only user admin; staff pick from their members.
        return list(self.autocomplete_fields) if request.user.is_superuser else []

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["user", "tenant", "project"] if obj is not None else []

    def object_errors(self, request: HttpRequest, obj: Any, *, new: bool) -> Errors:
        return grant_errors(
            request.user,
            user=getattr(obj, "user", None),
            tenant_id=obj.tenant_id,
            project_id=obj.project_id,
            role=obj.role,
            new=new,
        )

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        saved = set_membership(
            user=obj.user, scope=obj.project or obj.tenant, role=obj.role, actor=request.user
        )
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        remove_membership(obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for membership in queryset.select_related("user", "tenant", "project"):
            remove_membership(membership, actor=request.user)


@admin.register(ApiKey)
class ApiKeyAdmin(ScopedAdminMixin, ModelAdmin):
    """API keys: a new key's secret is shown once, after saving; only its hash is kept.

    The same caps as memberships: the admin role where the key acts (the tenant's for a tenant-wide
    key), a role no higher than one's own there, and a user one may manage (see MembershipAdmin).
    Another user's key is changed, revoked or deleted only by staff holding at least that user's
    role there.
    """

    tenant_field = "tenant_id"
    checks_each_object = True
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
    list_filter = ["role", ("tenant", ScopedRelatedFilter), ("project", ScopedRelatedFilter)]
    list_select_related = ["user", "tenant", "project", "project__tenant"]
    search_fields = ["name", "prefix", "user__email"]
    fields = ["user", "tenant", "project", "name", "role", "expires_at"]
    actions = ["revoke_keys"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        return ["user", "tenant", "project", "name", "role", "prefix", "revoked_at", "last_used_at"]

    def object_errors(self, request: HttpRequest, obj: Any, *, new: bool) -> Errors:
        return grant_errors(
            request.user,
            user=getattr(obj, "user", None),
            tenant_id=obj.tenant_id,
            project_id=obj.project_id,
            role=obj.role,
            new=new,
        )

    def consistency_errors(self, candidate: Any) -> Errors:
        errors = super().consistency_errors(candidate)
        expires_at = candidate.expires_at
        if candidate.pk is None and expires_at is not None and expires_at <= timezone.now():
            errors["expires_at"] = "A new key's expiry must be in the future."
        return errors

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
            actor=request.user,
        )
        obj.pk = issued.key.pk
        messages.warning(
            request,
            f"The new key's secret, shown only this once: {issued.secret}",
        )

    @admin.action(description="Revoke the selected keys")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = 0
        for key in queryset:
            revoke_api_key(key, actor=request.user)
            revoked += 1
        self.message_user(request, f"Revoked {revoked} key(s).")


admin.site.unregister(AuditEntry)


@admin.register(AuditEntry)
class AuditEntryAdmin(ScopedAdminMixin, LogEntryAdmin, ModelAdmin):
    """The audit log: read-only, filterable by tenant, actor, action, model and date."""

    tenant_field = "tenant_id"
    list_display = [
        "created",
        "tenant",
        "resource_url",
        "action",
        "msg_short",
        "actor_display",
        "cid",
    ]
    list_filter = [
        "action",
        ("tenant", ScopedRelatedFilter),
        ("content_type", ScopedRelatedFilter),
        "timestamp",
        ("actor", ScopedRelatedFilter),
    ]
    list_select_related = ["content_type", "actor", "tenant"]
    search_fields = ["object_repr", "actor_email", "api_key_name", "cid"]

    @admin.display(description="actor")
    def actor_display(self, entry: AuditEntry) -> str:
        if entry.api_key_name:
            return f"{entry.actor_email or '-'} (key {entry.api_key_name})"
        return entry.actor_email or "system"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
