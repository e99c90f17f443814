"""Health, project, API keys and audit endpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from engramia_site.api_errors import ServiceUnavailable
from tenants.api.base import ScopedViewSet
from tenants.api.schema import error_responses
from tenants.api.serializers import (
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    AuditEntrySerializer,
    HealthSerializer,
    IssuedKeySerializer,
)
from tenants.choices import Role
from tenants.models import ApiKey, AuditEntry, Project
from tenants.roles import tenant_role
from tenants.services import (
    IssuedKey,
    create_api_key_for,
    project_for_new_key,
    revoke_api_key,
    rotate_api_key,
)

KEY_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The key's id.")


class HealthView(APIView):
    """GET /v1/health: database and pgvector status; no authentication."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    # No key, no throttle: a 400 only for text no request may carry (U+0000), 503 when down.
    @extend_schema(responses={200: HealthSerializer, **error_responses(400, 503)})
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


@extend_schema_view(
    destroy=extend_schema(parameters=[KEY_ID]),
    rotate=extend_schema(parameters=[KEY_ID], request=None, responses=IssuedKeySerializer),
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

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: IssuedKeySerializer})
    def create(self, request: Request) -> Response:
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        caller = cast(ApiKey, request.auth)
        project: Project | None = self.project
        if "project" in data:
            slug = data["project"]
            project = None if slug is None else project_for_new_key(actor=caller, slug=slug)
        issued = create_api_key_for(
            actor=caller,
            tenant=self.project.tenant,
            project=project,
            name=data["name"],
            role=data["role"],
            expires_at=data.get("expires_at"),
        )
        return _issued_response(issued, status.HTTP_201_CREATED)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        revoke_api_key(self.get_object(), actor=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, pk: str | None = None) -> Response:
        issued = rotate_api_key(key=self.get_object(), actor=request.auth)
        return _issued_response(issued, status.HTTP_200_OK)


def _utc_datetime(raw: str) -> datetime | None:
    """An ISO 8601 date-time as UTC (naive: UTC), or None when it is not one we can store."""
    try:
        moment = parse_datetime(raw)
        if moment is None:
            return None
        # PostgreSQL refuses offsets past ±15:59, which ISO 8601 allows: compare in UTC.
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):  # well-formed but impossible, or past year 1..9999
        return None


AUDIT_ACTIONS = {label.lower(): value for value, label in AuditEntry.Action.choices}


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("action", str, enum=list(AUDIT_ACTIONS)),
            OpenApiParameter("actor", str, description="An email, or an API key's name."),
            OpenApiParameter("object_type", str, description="e.g. pattern, apikey, project."),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="From (inclusive)."),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="Until (exclusive)."),
        ]
    )
)
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
                moment = _utc_datetime(raw)
                if moment is None:
                    errors[name] = ["Use an ISO 8601 date-time."]
                else:
                    queryset = queryset.filter(**{lookup: moment})
        if errors:
            raise exceptions.ValidationError(errors)
        return queryset
