"""Who sees and who manages a skill, stated once as querysets.

A caller acting in project P of tenant T sees P's skills, T's tenant-visible skills and every
tenant's public skills; it manages (updates, deletes, publishes) only the skills P owns.
Everything else it can see is read-only to it (it may still evaluate them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models import BooleanField, ExpressionWrapper, Q

from skills.choices import SearchScope, Visibility
from tenants.choices import Role
from tenants.querysets import role_for_action, visible_project_ids

if TYPE_CHECKING:
    from tenants.models import Project


def _project_pk(project: Project | int) -> int:
    return project if isinstance(project, int) else int(project.pk)


class SkillQuerySet(models.QuerySet):
    """Skills, filterable by what a project or a user may see or do."""

    def visible_to(self, project: Project) -> SkillQuerySet:
        """What a caller acting in project may read, annotated `managed` (True when it owns it)."""
        return self.filter(
            Q(project_id=project.pk)
            | Q(tenant_id=project.tenant_id, visibility=Visibility.TENANT)
            | Q(visibility=Visibility.PUBLIC)
        ).annotate(managed=ExpressionWrapper(Q(project_id=project.pk), output_field=BooleanField()))

    def managed_from(self, project: Project | int) -> SkillQuerySet:
        """What a caller acting in project may change or delete: the skills the project owns."""
        return self.filter(project_id=_project_pk(project))

    def in_scope(self, project: Project, scope: SearchScope | str) -> SkillQuerySet:
        """Narrow a visible queryset to one search scope, relative to the caller's project."""
        scope = SearchScope(scope)
        if scope == SearchScope.PROJECT:
            return self.filter(project_id=project.pk)
        if scope == SearchScope.TENANT:
            return self.filter(tenant_id=project.tenant_id)
        if scope == SearchScope.PUBLIC:
            return self.filter(visibility=Visibility.PUBLIC)
        return self

    def restrict(self, user: Any, action: str | Role = "view") -> SkillQuerySet:
        """Skills owned where user holds the action's role (admin curation); superusers: all."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser:
            return self
        from tenants.models import TenantUserObjectPermission

        role = role_for_action(action)
        tenant_ids = TenantUserObjectPermission.objects.filter(
            user_id=user.pk, permission__codename=f"tenant_{role.value}"
        ).values("content_object_id")
        return self.filter(
            Q(project_id__in=visible_project_ids(user, action))
            | Q(project__isnull=True, tenant_id__in=tenant_ids)
        )
