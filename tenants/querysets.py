"""Scoped querysets: every tenant-owned queryset can restrict(user, action)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models import Q

from tenants.choices import Role

if TYPE_CHECKING:
    from tenants.models import Project

# What each action needs; views and services name actions, never raw permissions.
ACTION_ROLES: dict[str, Role] = {
    "view": Role.READER,
    "add": Role.EDITOR,
    "change": Role.EDITOR,
    "curate": Role.ADMIN,
    "delete": Role.ADMIN,
    "administer": Role.ADMIN,
    "own": Role.OWNER,
}


def role_for_action(action: str | Role) -> Role:
    """The minimum role an action needs (a Role passes through)."""
    if isinstance(action, Role) or action in Role.values:
        return Role(action)
    try:
        return ACTION_ROLES[action]
    except KeyError:
        raise ValueError(f"unknown action {action!r}") from None


def visible_project_ids(user: Any, action: str | Role) -> models.QuerySet[Any]:
    """Ids of the projects where user holds at least the action's role (a subquery)."""
    from tenants.models import (
        Project,
        ProjectUserObjectPermission,
        TenantUserObjectPermission,
    )

    role = role_for_action(action)
    direct = ProjectUserObjectPermission.objects.filter(
        user_id=user.pk, permission__codename=f"project_{role.value}"
    ).values("content_object_id")
    via_tenant = TenantUserObjectPermission.objects.filter(
        user_id=user.pk, permission__codename=f"tenant_{role.value}"
    ).values("content_object_id")
    return Project.objects.filter(Q(id__in=direct) | Q(tenant_id__in=via_tenant)).values("id")


def tenant_ids_with_role(user: Any, action: str | Role) -> models.QuerySet[Any]:
    """Ids of the tenants where user holds at least the action's role on the whole tenant."""
    role = role_for_action(action)
    from tenants.models import TenantUserObjectPermission

    return TenantUserObjectPermission.objects.filter(
        user_id=user.pk, permission__codename=f"tenant_{role.value}"
    ).values("content_object_id")


def tenant_ids_touched(user: Any, action: str | Role) -> Q:
    """Tenants with a project where user may perform action, or where they hold it tenant-wide."""
    from tenants.models import Project

    projects = Project.objects.filter(id__in=visible_project_ids(user, action)).values("tenant_id")
    return Q(id__in=projects) | Q(id__in=tenant_ids_with_role(user, action))


def scope_q(user: Any, action: str | Role, *, project: str, tenant: str | None = None) -> Q:
    """Rows whose project (or, when project is empty, tenant) lets user perform action."""
    where = Q(**{f"{project}__in": visible_project_ids(user, action)})
    if tenant is not None:
        tenants = tenant_ids_with_role(user, action)
        where |= Q(**{f"{project}__isnull": True, f"{tenant}__in": tenants})
    return where


class TenantQuerySet(models.QuerySet):
    """Tenants, filterable by what a user may see."""

    def restrict(self, user: Any, action: str | Role = "view") -> TenantQuerySet:
        """Tenants with a project where user may act so, or where they hold the role tenant-wide."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser:
            return self
        return self.filter(tenant_ids_touched(user, action))


class ProjectQuerySet(models.QuerySet):
    """Projects, filterable by what a user may see or do."""

    def restrict(self, user: Any, action: str | Role = "view") -> ProjectQuerySet:
        """Projects where user holds the role action needs; superusers see all."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser:
            return self
        return self.filter(id__in=visible_project_ids(user, action))


class ProjectScopedQuerySet(models.QuerySet):
    """Base for every model that belongs to a project (patterns, jobs, documents, ...)."""

    def for_project(self, project: Project | int) -> ProjectScopedQuerySet:
        """Rows of one project."""
        return self.filter(project_id=getattr(project, "pk", project))

    def restrict(self, user: Any, action: str | Role = "view") -> ProjectScopedQuerySet:
        """Rows in projects where user may perform action (tenant-level rows: tenant-wide role)."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser:
            return self
        tenant_level = any(field.name == "tenant" for field in self.model._meta.get_fields())
        tenant = "tenant_id" if tenant_level else None
        return self.filter(scope_q(user, action, project="project_id", tenant=tenant))
