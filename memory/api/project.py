"""GET/PATCH /v1/project: the project's memory settings.

It lives in the memory app because changing them reaches into memory: a new embedding model is a
re-embedding job (`memory.services.reembedding`), the LLM judge is memory's, and the read path is
the migration cut-over. The project itself, its roles and its audit stay in `tenants`.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from jobs.api.async_support import accepted
from jobs.api.serializers import JobAcceptedSerializer
from jobs.operations import validate_input
from memory.services.project_settings import update_project_settings
from retrieval.pinned_model import UnknownEmbeddingModel, resolve_embedding_model
from tenants.api.base import ScopedAPIView
from tenants.api.schema import error_responses
from tenants.api.strict import StrictSerializer
from tenants.choices import LLMChoice, ReadPath, Role
from tenants.models import Project, llm_model_validator


class ProjectSerializer(serializers.ModelSerializer):
    """GET /v1/project."""

    tenant = serializers.CharField(source="tenant.slug", read_only=True)

    class Meta:
        model = Project
        fields = [
            "tenant",
            "slug",
            "name",
            "read_path",
            "embedding_model",
            "instructions",
            "llm_provider",
            "llm_model",
        ]
        read_only_fields = fields


class ProjectUpdateSerializer(StrictSerializer):
    """PATCH /v1/project: a read_path change is the audited cut-over and needs a reason."""

    name = serializers.CharField(max_length=200, required=False)
    instructions = serializers.CharField(max_length=100_000, required=False, allow_blank=True)
    read_path = serializers.ChoiceField(choices=ReadPath.choices, required=False)
    llm_provider = serializers.ChoiceField(
        choices=LLMChoice.choices, required=False, allow_blank=True
    )
    llm_model = serializers.CharField(
        max_length=100, required=False, allow_blank=True, validators=[llm_model_validator]
    )
    reason = serializers.CharField(max_length=1000, required=False, allow_blank=False)
    embedding_model = serializers.CharField(max_length=100, required=False)

    def validate_embedding_model(self, value: str) -> str:
        """The stored spelling of a model this deployment can embed with (a change is a job)."""
        try:
            return resolve_embedding_model(value)
        except UnknownEmbeddingModel as exc:
            raise serializers.ValidationError(str(exc), code="unknown_model") from None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "read_path" in attrs and not attrs.get("reason"):
            raise serializers.ValidationError(
                {"reason": ["A reason is required when changing read_path."]}, code="required"
            )
        return attrs


class ProjectReembeddingSerializer(JobAcceptedSerializer):
    """PATCH /v1/project with a new embedding model: the re-embedding job, and the project."""

    project = ProjectSerializer()


class ProjectView(ScopedAPIView):
    """GET/PATCH /v1/project: the project this key acts on."""

    required_roles = {"GET": Role.READER, "PATCH": Role.ADMIN}

    @extend_schema(responses=ProjectSerializer)
    def get(self, request: Request) -> Response:
        return Response(ProjectSerializer(self.project).data)

    @extend_schema(
        request=ProjectUpdateSerializer,
        responses={
            200: ProjectSerializer,
            202: ProjectReembeddingSerializer,
            **error_responses(409),
        },
    )
    def patch(self, request: Request) -> Response:
        changes = validate_input(ProjectUpdateSerializer, request.data)
        update = update_project_settings(project=self.project, actor=request.user, changes=changes)
        if update.reembedding_job is not None:
            # A new model is a re-embedding job; the project shows it once the job has swapped.
            response = accepted(update.reembedding_job)
            response.data["project"] = ProjectSerializer(update.project).data
            return response
        return Response(ProjectSerializer(update.project).data)
