"""The skills API: thin views over skills.services, scoped by tenants.api.base.ScopedViewSet."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, cast

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from engramia_site.api_errors import Conflict, ServiceUnavailable
from retrieval.embeddings import EmbeddingError
from skills.api.serializers import (
    SkillEvaluationCreateSerializer,
    SkillEvaluationSerializer,
    SkillListItemSerializer,
    SkillMatchSerializer,
    SkillQuerySerializer,
    SkillSerializer,
    SkillVersionSerializer,
    SkillWriteSerializer,
    ToolQuerySerializer,
)
from skills.choices import ToolFormat, Visibility
from skills.models import Skill
from skills.querysets import SkillQuerySet
from skills.services import (
    SkillNameTaken,
    delete_skill,
    evaluate_skill,
    filter_query,
    query_skills,
    register_skill,
    to_anthropic_tool,
    to_openai_tool,
    update_skill,
    visible_skills,
)
from tenants.api.base import ScopedViewSet
from tenants.api.schema import error_responses
from tenants.choices import Role


class _SettingsWithoutFormatOverride:
    URL_FORMAT_OVERRIDE = None

    def __getattr__(self, name: str) -> Any:
        return getattr(api_settings, name)


class ProviderFormatNegotiation(DefaultContentNegotiation):
    """Here `?format=` names a provider's tool format, not a renderer (DRF's default reading)."""

    settings = _SettingsWithoutFormatOverride()  # type: ignore[assignment]


@contextlib.contextmanager
def service_errors() -> Iterator[None]:
    """Translate what services raise into the API's error answers."""
    try:
        yield
    except SkillNameTaken as exc:
        raise Conflict(str(exc)) from exc
    except DjangoValidationError as exc:
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        raise exceptions.ValidationError(detail) from exc
    except Skill.DoesNotExist as exc:
        raise exceptions.NotFound("Skill not found.") from exc
    except EmbeddingError as exc:
        raise ServiceUnavailable(f"The embedding provider failed: {exc}") from exc


def _query_data(request: Request) -> dict[str, Any]:
    params = request.query_params
    # An empty value is the parameter left out, as everywhere in the API's queries.
    data: dict[str, Any] = {key: params.get(key) for key in params if key != "tags"}
    data = {key: value for key, value in data.items() if value}
    tags = [tag for raw in params.getlist("tags") for tag in raw.split(",") if tag.strip()]
    if tags:
        data["tags"] = tags
    return data


class SkillViewSet(mixins.RetrieveModelMixin, ScopedViewSet):
    """Skills the key's project may see; only the owning project may change them."""

    queryset = Skill.objects.all()
    serializer_class = SkillSerializer
    content_negotiation_class = ProviderFormatNegotiation
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    required_roles = {
        "list": Role.READER,
        "retrieve": Role.READER,
        "tool": Role.READER,
        "versions": Role.READER,
        "create": Role.EDITOR,
        "partial_update": Role.EDITOR,
        "evaluations": Role.EDITOR,
        "destroy": Role.ADMIN,
    }
    # Actions that change the skill itself: visible is not enough, the caller must own it.
    owner_actions = frozenset({"partial_update", "destroy"})
    # Widening or narrowing who sees a skill is a publication decision.
    publish_role = Role.ADMIN

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return visible_skills(self.project)

    def get_object(self) -> Skill:
        skill = super().get_object()
        if self.action in self.owner_actions and not skill.managed:
            raise exceptions.PermissionDenied(
                "This skill belongs to another project; it is read-only here."
            )
        return skill

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "project": getattr(self, "project", None)}

    def _require_publish_role(self, visibility: str) -> None:
        if not self.role.covers(self.publish_role):
            raise exceptions.PermissionDenied(
                f"Setting visibility to {visibility!r} needs the {self.publish_role.value} role; "
                f"this key acts as {self.role.value}."
            )

    def _owned(self, skill: Skill) -> Skill:
        skill.managed = True  # type: ignore[attr-defined]
        return skill

    @extend_schema(parameters=[SkillQuerySerializer], responses=SkillListItemSerializer(many=True))
    def list(self, request: Request) -> Response:
        query = SkillQuerySerializer(data=_query_data(request))
        query.is_valid(raise_exception=True)
        params = query.validated_data
        with service_errors():
            q, matches = query_skills(params, project=self.project, user_role=self.role)
        if not q:
            queryset = filter_query(
                cast(SkillQuerySet, self.get_queryset()), params, project=self.project
            )
            page = self.paginate_queryset(queryset)
            serializer = SkillSerializer(page, many=True, context=self.get_serializer_context())
            return self.get_paginated_response(serializer.data)
        context = {
            **self.get_serializer_context(),
            "matches": {match.skill.pk: match for match in matches},
            "explain": params["explain"],
        }
        # The `limit` best matches, paged like any list (one page unless page_size < limit).
        page = self.paginate_queryset([match.skill for match in matches])  # type: ignore[arg-type]
        results = SkillMatchSerializer(page, many=True, context=context)
        return self.get_paginated_response(results.data)

    @extend_schema(
        request=SkillWriteSerializer, responses={201: SkillSerializer, **error_responses(409)}
    )
    def create(self, request: Request) -> Response:
        serializer = SkillWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data["visibility"] != Visibility.PROJECT:
            self._require_publish_role(data["visibility"])
        with service_errors():
            skill = register_skill(actor=request.user, project=self.project, **data)
        body = SkillSerializer(self._owned(skill), context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=SkillWriteSerializer, responses={200: SkillSerializer, **error_responses(409)}
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        skill = self.get_object()
        serializer = SkillWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "visibility" in data and data["visibility"] != skill.visibility:
            self._require_publish_role(data["visibility"])
        with service_errors():
            skill = update_skill(actor=request.user, skill=skill, **data)
        return Response(
            SkillSerializer(self._owned(skill), context=self.get_serializer_context()).data
        )

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        with service_errors():
            delete_skill(actor=request.user, skill=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=SkillEvaluationCreateSerializer, responses={201: SkillEvaluationSerializer}
    )
    @action(detail=True, methods=["post"])
    def evaluations(self, request: Request, pk: str | None = None) -> Response:
        skill = self.get_object()
        serializer = SkillEvaluationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            evaluation = evaluate_skill(
                actor=request.user,
                skill=skill,
                project=self.project,
                **serializer.validated_data,
            )
        evaluation.skill = skill
        return Response(SkillEvaluationSerializer(evaluation).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[ToolQuerySerializer], responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def tool(self, request: Request, pk: str | None = None) -> Response:
        query = ToolQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        skill = self.get_object()
        if query.validated_data["format"] == ToolFormat.ANTHROPIC:
            return Response(to_anthropic_tool(skill))
        return Response(to_openai_tool(skill))

    @extend_schema(responses=SkillVersionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request: Request, pk: str | None = None) -> Response:
        skill = self.get_object()
        page = self.paginate_queryset(skill.versions.order_by("-version"))
        serializer = SkillVersionSerializer(
            page, many=True, context={"current_version": skill.version}
        )
        return self.get_paginated_response(serializer.data)
