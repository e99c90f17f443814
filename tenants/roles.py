"""Roles realised as django-guardian object permissions, and the effective role of a user."""

from __future__ import annotations

from collections.abc import Set
from typing import Any

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType

from tenants.choices import ROLE_ORDER, Role
from tenants.keyscope import forget_key_scopes
from tenants.models import (
    Project,
    ProjectUserObjectPermission,
    Tenant,
    TenantUserObjectPermission,
)


def _permissions(model: type[Any], prefix: str) -> dict[str, Permission]:
    content_type = ContentType.objects.get_for_model(model)
    return {
        perm.codename.removeprefix(prefix): perm
        for perm in Permission.objects.filter(
            content_type=content_type, codename__startswith=prefix
        )
    }


def grant_role(user: Any, scope: Tenant | Project, role: Role) -> None:
    """Replace user's guardian permissions on scope with those of role (and every lower role)."""
    revoke_roles(user, scope)
    granted = ROLE_ORDER[: Role(role).rank + 1]
    if isinstance(scope, Project):
        perms = _permissions(Project, "project_")
        ProjectUserObjectPermission.objects.bulk_create(
            ProjectUserObjectPermission(user=user, content_object=scope, permission=perms[r.value])
            for r in granted
        )
    else:
        perms = _permissions(Tenant, "tenant_")
        TenantUserObjectPermission.objects.bulk_create(
            TenantUserObjectPermission(user=user, content_object=scope, permission=perms[r.value])
            for r in granted
        )
    forget_key_scopes()  # bulk_create sends no post_save


def revoke_roles(user: Any, scope: Tenant | Project) -> None:
    """Remove every role permission user holds on scope."""
    if isinstance(scope, Project):
        ProjectUserObjectPermission.objects.filter(user=user, content_object=scope).delete()
    else:
        TenantUserObjectPermission.objects.filter(user=user, content_object=scope).delete()


def _highest(codenames: Set[str], prefix: str) -> Role | None:
    held = [role for role in ROLE_ORDER if f"{prefix}{role.value}" in codenames]
    return held[-1] if held else None


def tenant_role(user: Any, tenant: Tenant | int) -> Role | None:
    """The role user holds on the whole tenant, if any."""
    if user.is_superuser:
        return Role.OWNER
    codenames = set(
        TenantUserObjectPermission.objects.filter(
            user_id=user.pk, content_object_id=getattr(tenant, "pk", tenant)
        ).values_list("permission__codename", flat=True)
    )
    return _highest(codenames, "tenant_")


def effective_role(user: Any, project: Project) -> Role | None:
    """The higher of user's tenant role and project role on project (one query)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.OWNER
    project_codes = ProjectUserObjectPermission.objects.filter(
        user_id=user.pk, content_object_id=project.pk
    ).values_list("permission__codename", flat=True)
    tenant_codes = TenantUserObjectPermission.objects.filter(
        user_id=user.pk, content_object_id=project.tenant_id
    ).values_list("permission__codename", flat=True)
    return role_from_codenames(user, set(project_codes.union(tenant_codes)))


def role_from_codenames(user: Any, codenames: Set[str]) -> Role | None:
    """The higher of the project and tenant roles among user's codenames on a project and tenant."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.OWNER
    roles = [r for r in (_highest(codenames, "project_"), _highest(codenames, "tenant_")) if r]
    return max(roles, key=lambda r: r.rank) if roles else None
