"""The one enforcement point of the API: key → project scope → role check, for every request.

A view declares what it needs (`required_roles` by action or method); this base resolves the
project the key acts on, answers 404 when it is not visible and 403 when the role is too low,
and restricts querysets to that project. Views cannot forget to opt in.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models
from rest_framework import exceptions, viewsets
from rest_framework.request import Request
from rest_framework.views import APIView

from tenants.api.authentication import PROJECT_HEADER
from tenants.choices import Role
from tenants.keyscope import KeyScope
from tenants.models import ApiKey, Project
from tenants.roles import role_from_codenames
from tenants.services import cap_by_key

DEFAULT_ROLES = {
    "GET": Role.READER,
    "HEAD": Role.READER,
    "OPTIONS": Role.READER,
    "POST": Role.EDITOR,
    "PUT": Role.EDITOR,
    "PATCH": Role.EDITOR,
    "DELETE": Role.ADMIN,
}


def resolve_project(scope: KeyScope, header: str = PROJECT_HEADER) -> Project:
    """The project a request acts on: the key's own, or the header's for a tenant-wide key."""
    key, named = scope.key, scope.named
    if key.project_id is not None:
        assert key.project is not None
        if named and named != key.project.slug:
            raise exceptions.NotFound(f"Project {named!r} is not visible to this key.")
        return key.project
    if not named:
        raise exceptions.ValidationError(
            {header: ["A tenant-wide key must name the project in this header."]}
        )
    if scope.project is None:
        raise exceptions.NotFound(f"Project {named!r} is not visible to this key.")
    return scope.project


class ScopedViewMixin:
    """Resolve scope and role before any handler runs."""

    required_roles: ClassVar[dict[str, Role]] = {}
    # The header a tenant-wide key names its project in (as the refusal names it).
    project_header: ClassVar[str] = PROJECT_HEADER
    project: Project
    role: Role

    def required_role(self, request: Request) -> Role:
        action = getattr(self, "action", None)
        if action and action in self.required_roles:
            return self.required_roles[action]
        method = (request.method or "GET").upper()
        return self.required_roles.get(method, DEFAULT_ROLES.get(method, Role.OWNER))

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        key = request.auth
        scope = getattr(key, "scope", None)
        if not isinstance(key, ApiKey) or not isinstance(scope, KeyScope):
            raise exceptions.NotAuthenticated()
        self.project = resolve_project(scope, self.project_header)
        role = cap_by_key(key, role_from_codenames(key.user, scope.codenames))
        if role is None:
            raise exceptions.NotFound("Project not found.")
        self.role = role
        needed = self.required_role(request)
        if not role.covers(needed):
            raise exceptions.PermissionDenied(
                f"This needs the {needed.value} role; this key acts as {role.value}."
            )
        request.project = self.project  # type: ignore[attr-defined]
        request.role = role  # type: ignore[attr-defined]

    def scope_queryset(self, queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
        """Restrict a project-owned queryset to the request's project."""
        return queryset.filter(project_id=self.project.pk)


class ScopedAPIView(ScopedViewMixin, APIView):
    """An APIView acting inside one project."""


class ScopedViewSet(ScopedViewMixin, viewsets.GenericViewSet):
    """A ViewSet whose queryset is always the request's project's rows."""

    def get_queryset(self) -> models.QuerySet[Any]:
        return self.scope_queryset(super().get_queryset())
