"""Admin plumbing: staff see and change only what their roles allow (superusers see all)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from tenants.choices import Role
from tenants.models import Project
from tenants.querysets import visible_project_ids


def _project_of(obj: Any) -> Project | None:
    if isinstance(obj, Project):
        return obj
    return getattr(obj, "project", None)


class ScopedAdminMixin:
    """Filter an admin by the user's projects; edits need `change_role` on the object's project."""

    scope_field = "project_id"  # the field holding the owning project's id
    change_role = Role.ADMIN

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)  # type: ignore[misc]
        if request.user.is_superuser:
            return queryset
        return queryset.filter(
            **{f"{self.scope_field}__in": visible_project_ids(request.user, "view")}
        )

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def _may_change(self, request: HttpRequest, obj: Any) -> bool:
        if request.user.is_superuser:
            return True
        if not request.user.is_staff:
            return False
        if obj is None:
            return visible_project_ids(request.user, self.change_role).exists()
        project = _project_of(obj)
        if project is None:
            return False
        return visible_project_ids(request.user, self.change_role).filter(id=project.pk).exists()

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_change(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_change(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._may_change(request, None)


class ReadOnlyAdmin(admin.ModelAdmin):
    """An admin that shows records and never edits them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
