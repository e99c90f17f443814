"""Admin for tenants, projects, memberships, API keys and the audit log (users: superusers only)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from auditlog.admin import LogEntryAdmin
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponseBadRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RangeDateFilter
from unfold.utils import parse_date_str

from engramia_site.errors import DomainError
from tenants.admin_paging import EstimatedCountPaginator
from tenants.admin_scope import (
    Errors,
    ScopedAdminMixin,
    ScopedRelatedFilter,
    grant_errors,
    restrict_to_superusers,
    tenant_ids_touched,
    tenant_ids_with_role,
)
from tenants.audit_export import audit_csv_lines
from tenants.choices import Role
from tenants.models import ApiKey, AuditEntry, Membership, Project, Tenant
from tenants.services import (
    create_api_key_for,
    remove_membership,
    revoke_api_key,
    rotate_api_key,
    set_membership,
)

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
    actions = ["revoke_keys", "rotate_keys"]

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
        try:
            # The API's own rule for who may issue which key, on top of the form's check.
            issued = create_api_key_for(
                actor=request.user,
                user=obj.user,
                tenant=obj.tenant,
                project=obj.project,
                name=obj.name,
                role=obj.role,
                expires_at=obj.expires_at,
            )
        except DomainError as exc:
            raise PermissionDenied(str(exc)) from exc
        obj.pk = issued.key.pk
        messages.warning(
            request,
            f"The new key's secret, shown only this once: {issued.secret}",
        )

    @admin.action(description="Rotate the selected keys (new secrets, shown once)")
    def rotate_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset.select_related("user", "tenant", "project"):
            try:
                issued = rotate_api_key(key=key, actor=request.user)
            except (DomainError, ValidationError):
                self.message_user(
                    request, f"{key}: revoked or expired, not rotated.", messages.ERROR
                )
                continue
            messages.warning(
                request, f"New secret of {issued.key.name}, shown only this once: {issued.secret}"
            )

    @admin.action(description="Revoke the selected keys")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = 0
        for key in queryset:
            revoke_api_key(key, actor=request.user)
            revoked += 1
        self.message_user(request, f"Revoked {revoked} key(s).")


admin.site.unregister(AuditEntry)


class AuditDateFilter(RangeDateFilter):
    """Entries from one day through another (whole days, UTC), index-friendly."""

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        bounds: dict[str, datetime] = {}
        for suffix, lookup, shift in (("_from", "gte", 0), ("_to", "lt", 1)):
            value = self.used_parameters.get(f"{self.parameter_name}{suffix}")
            if value in (None, ""):
                continue
            day = parse_date_str(str(value))
            if day is None:
                raise IncorrectLookupParameters(f"{self.parameter_name}{suffix}: not a date")
            start = datetime.combine(day + timedelta(days=shift), time.min, tzinfo=UTC)
            bounds[f"{self.parameter_name}__{lookup}"] = start
        return queryset.filter(**bounds)


@admin.register(AuditEntry)
class AuditEntryAdmin(ScopedAdminMixin, LogEntryAdmin, ModelAdmin):
    """The audit log: read-only, filterable, each change as field: old → new, exported as CSV."""

    tenant_field = "tenant_id"
    list_display = [
        "created",
        "tenant",
        "project",
        "resource_url",
        "action",
        "changes_inline",
        "actor_display",
        "cid",
    ]
    list_filter = [
        ("timestamp", AuditDateFilter),
        "action",
        ("tenant", ScopedRelatedFilter),
        ("project", ScopedRelatedFilter),
        ("content_type", ScopedRelatedFilter),
        ("actor", ScopedRelatedFilter),
    ]
    list_filter_submit = True  # the date range is a form
    list_select_related = ["content_type", "actor", "tenant", "project", "project__tenant"]
    search_fields = ["object_repr", "actor_email", "api_key_name", "cid"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    date_hierarchy = None  # the date range filter instead: no DISTINCT over every entry's date
    list_before_template = "admin/tenants/auditentry/export_link.html"

    @admin.display(description="actor")
    def actor_display(self, entry: AuditEntry) -> str:
        actor = entry.actor_email or ("-" if entry.api_key_name else "system")
        if entry.api_key_name:
            actor = f"{actor} (key {entry.api_key_name})"
        transport = (entry.additional_data or {}).get("transport")
        return f"{actor} via {transport}" if transport else actor

    @admin.display(description="changes")
    def changes_inline(self, entry: AuditEntry) -> Any:
        changes = entry.changes_dict or {}
        lines = format_html_join(
            "",
            '<div><span class="font-semibold">{}</span>: <span class="eng-old">{}</span> → '
            '<span class="eng-new">{}</span></div>',
            (
                (name, str(values[0])[:80], str(values[1])[:80])
                for name, values in list(changes.items())[:8]
                if isinstance(values, list | tuple) and len(values) == 2
            ),
        )
        return format_html('<div class="eng-changes">{}</div>', lines)

    def lookup_allowed(self, lookup: str, value: str, request: Any = None) -> bool:
        # The per-object history (ScopedAdminMixin.history_view) filters by object.
        if lookup in ("object_pk", "object_pk__exact"):
            return True
        return super().lookup_allowed(lookup, value, request)

    def get_urls(self) -> list[Any]:
        export = self.admin_site.admin_view(self.export_view)
        return [path("export.csv", export, name="tenants_auditentry_export"), *super().get_urls()]

    def export_view(self, request: HttpRequest) -> HttpResponseBase:
        """The rows of the list as filtered (scope, filters, search), as a streamed CSV file."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters as exc:
            return HttpResponseBadRequest(f"Bad filter: {exc}", content_type="text/plain")
        rows = changelist.get_queryset(request)
        response = StreamingHttpResponse(audit_csv_lines(rows), content_type="text/csv")
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="engramia-audit-{stamp}.csv"'
        return response

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
