"""Health, project, API keys and audit endpoints."""

from __future__ import annotations

from typing import Any, cast

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from engramia_site.api_errors import ServiceUnavailable
from tenants.api.base import ScopedViewSet
from tenants.api.serializers import (
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    AuditEntrySerializer,
)
from tenants.choices import Role
from tenants.models import ApiKey, AuditEntry, Project
from tenants.roles import tenant_role
from tenants.services import (
    IssuedKey,
    create_api_key,
    revoke_api_key,
    rotate_api_key,
)


class HealthView(APIView):
    """GET /v1/health: database and pgvector status; no authentication."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
                row = cursor.fetchone()
        except Exception as exc:
            raise ServiceUnavailable(f"The database is unreachable: {exc}") from exc
        if row is None:
            raise ServiceUnavailable("The pgvector extension is not installed in the database.")
        return Response({"status": "ok", "database": "ok", "pgvector": row[0]})


def _issued_response(issued: IssuedKey, status_code: int) -> Response:
    key = issued.key
    return Response(
        {
            "id": key.pk,
            "api_key": issued.secret,
            "prefix": key.prefix,
            "name": key.name,
            "role": key.role,
            "project": key.project.path if key.project else None,
            "expires_at": key.expires_at,
        },
        status=status_code,
    )


class ApiKeyViewSet(mixins.ListModelMixin, ScopedViewSet):
    """Keys of the project (and, for tenant admins, the tenant's tenant-wide keys)."""

    serializer_class = ApiKeySerializer
    required_roles = {
        "list": Role.ADMIN,
        "create": Role.ADMIN,
        "destroy": Role.ADMIN,
        "rotate": Role.ADMIN,
    }

    def get_queryset(self) -> QuerySet[ApiKey]:
        visible = Q(project_id=self.project.pk)
        key = cast(ApiKey, self.request.auth)
        if key.project_id is None and (tenant_role(key.user, key.tenant_id) or Role.READER).covers(
            Role.ADMIN
        ):
            visible |= Q(tenant_id=self.project.tenant_id, project__isnull=True)
        return ApiKey.objects.filter(visible).select_related("user", "tenant", "project")

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: dict})
    def create(self, request: Request) -> Response:
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        caller = cast(ApiKey, request.auth)
        role = Role(data["role"])
        if not self.role.covers(role):
            raise exceptions.PermissionDenied(
                f"A key cannot grant more than its own role ({self.role.value})."
            )
        project: Project | None = self.project
        if "project" in data:
            project = self._target_project(caller, data["project"])
        issued = create_api_key(
            user=caller.user,
            tenant=self.project.tenant,
            project=project,
            name=data["name"],
            role=role,
            expires_at=data.get("expires_at"),
        )
        return _issued_response(issued, status.HTTP_201_CREATED)

    def _target_project(self, caller: ApiKey, slug: str | None) -> Project | None:
        if slug is None:  # a tenant-wide key: only a tenant-wide admin key may mint one
            user_tenant_role = tenant_role(caller.user, caller.tenant_id)
            if caller.project_id is not None or not (
                user_tenant_role and user_tenant_role.covers(Role.ADMIN)
            ):
                raise exceptions.PermissionDenied(
                    "Only a tenant-wide key of a tenant admin can create tenant-wide keys."
                )
            return None
        if caller.project_id is not None and slug != self.project.slug:
            raise exceptions.NotFound(f"Project {slug!r} is not visible to this key.")
        target = Project.objects.filter(tenant_id=caller.tenant_id, slug=slug).first()
        if target is None:
            raise exceptions.NotFound(f"Project {slug!r} is not visible to this key.")
        from tenants.services import key_role_on_project

        target_role = key_role_on_project(caller, target)
        if target_role is None:
            raise exceptions.NotFound(f"Project {slug!r} is not visible to this key.")
        if not target_role.covers(Role.ADMIN):
            raise exceptions.PermissionDenied("Creating keys needs the admin role there.")
        return target

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        revoke_api_key(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, pk: str | None = None) -> Response:
        key = self.get_object()
        if not key.is_active:
            raise exceptions.ValidationError(
                {"id": ["A revoked or expired key cannot be rotated."]}
            )
        return _issued_response(rotate_api_key(key), status.HTTP_200_OK)


AUDIT_ACTIONS = {label.lower(): value for value, label in AuditEntry.Action.choices}


class AuditViewSet(mixins.ListModelMixin, ScopedViewSet):
    """GET /v1/audit: the project's audit trail (tenant-level entries for tenant admins)."""

    serializer_class = AuditEntrySerializer
    required_roles = {"list": Role.ADMIN}

    def get_queryset(self) -> QuerySet[AuditEntry]:
        key = cast(ApiKey, self.request.auth)
        visible = Q(project_id=self.project.pk)
        user_tenant_role = tenant_role(key.user, key.tenant_id)
        if key.project_id is None and user_tenant_role and user_tenant_role.covers(Role.ADMIN):
            visible |= Q(tenant_id=self.project.tenant_id, project__isnull=True)
        queryset = AuditEntry.objects.filter(visible).select_related("content_type")
        return self._filter(queryset, self.request.query_params).order_by("-timestamp", "-id")

    def _filter(self, queryset: QuerySet[AuditEntry], params: Any) -> QuerySet[AuditEntry]:
        errors: dict[str, list[str]] = {}
        if action_name := params.get("action"):
            if action_name not in AUDIT_ACTIONS:
                errors["action"] = [f"Use one of: {', '.join(AUDIT_ACTIONS)}."]
            else:
                queryset = queryset.filter(action=AUDIT_ACTIONS[action_name])
        if actor := params.get("actor"):
            queryset = queryset.filter(Q(actor_email__iexact=actor) | Q(api_key_name=actor))
        if object_type := params.get("object_type"):
            queryset = queryset.filter(content_type__model=object_type.lower())
        for name, lookup in (("since", "timestamp__gte"), ("until", "timestamp__lt")):
            if raw := params.get(name):
                moment = parse_datetime(raw)
                if moment is None:
                    errors[name] = ["Use an ISO 8601 date-time."]
                else:
                    queryset = queryset.filter(**{lookup: moment})
        if errors:
            raise exceptions.ValidationError(errors)
        return queryset
