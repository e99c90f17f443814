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

from tenants.choices import Role
from tenants.keyscope import PROJECT_HEADER, KeyScope
from tenants.models import ApiKey, Project
from tenants.services import key_access, require_role

DEFAULT_ROLES = {
    "GET": Role.READER,
    "HEAD": Role.READER,
    "OPTIONS": Role.READER,
    "POST": Role.EDITOR,
    "PUT": Role.EDITOR,
    "PATCH": Role.EDITOR,
    "DELETE": Role.ADMIN,
}


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
        # The project and role (404 when the key sees no such project): tenants.services.
        access = key_access(scope, self.project_header)
        self.project = access.project
        self.role = role = access.role
        require_role(role, self.required_role(request))
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
