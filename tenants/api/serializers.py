"""Shapes of the tenants API: project, keys, audit entries."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from memory.services.embedding import UnknownEmbeddingModel, resolve_embedding_model
from tenants.api.strict import StrictSerializer
from tenants.choices import LLMChoice, ReadPath, Role
from tenants.models import ApiKey, AuditEntry, Project, llm_model_validator


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


class ApiKeySerializer(serializers.ModelSerializer):
    """A key as listed: never its secret."""

    project = serializers.SerializerMethodField()
    owner = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "role",
            "project",
            "owner",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
        ]
        read_only_fields = fields

    def get_project(self, key: ApiKey) -> str | None:
        return f"{key.tenant.slug}/{key.project.slug}" if key.project else None


class ApiKeyCreateSerializer(StrictSerializer):
    """POST /v1/keys."""

    name = serializers.CharField(max_length=100)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.READER)
    project = serializers.CharField(max_length=64, required=False, allow_null=True)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


ACTION_LABELS = dict(AuditEntry.Action.choices)


class AuditEntrySerializer(serializers.ModelSerializer):
    """An audit entry as the API shows it."""

    action = serializers.SerializerMethodField()
    object_type = serializers.CharField(source="content_type.model", read_only=True)
    object_id = serializers.CharField(source="object_pk", read_only=True)
    actor = serializers.SerializerMethodField()
    api_key = serializers.CharField(source="api_key_name", read_only=True)
    request_id = serializers.CharField(source="cid", read_only=True)
    reason = serializers.SerializerMethodField()

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "timestamp",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "actor",
            "api_key",
            "changes",
            "request_id",
            "reason",
        ]
        read_only_fields = fields

    def get_action(self, entry: AuditEntry) -> str:
        return str(ACTION_LABELS.get(entry.action, entry.action)).lower()

    def get_actor(self, entry: AuditEntry) -> str | None:
        return entry.actor_email or entry.api_key_name or None

    def get_reason(self, entry: AuditEntry) -> str | None:
        return (entry.additional_data or {}).get("reason")
