"""Shapes of the tenants API: project, keys, audit entries."""

from __future__ import annotations

from rest_framework import serializers

from tenants.api.strict import StrictSerializer
from tenants.choices import Role
from tenants.models import ApiKey, AuditEntry


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
    transport = serializers.SerializerMethodField()

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
            "transport",
        ]
        read_only_fields = fields

    def get_action(self, entry: AuditEntry) -> str:
        return str(ACTION_LABELS.get(entry.action, entry.action)).lower()

    def get_actor(self, entry: AuditEntry) -> str | None:
        return entry.actor_email or entry.api_key_name or None

    def get_reason(self, entry: AuditEntry) -> str | None:
        return (entry.additional_data or {}).get("reason")

    def get_transport(self, entry: AuditEntry) -> str | None:
        """How the call arrived when not through /v1 (e.g. "mcp-http", "mcp-stdio")."""
        return (entry.additional_data or {}).get("transport")


class HealthSerializer(serializers.Serializer):
    """GET /v1/health."""

    status = serializers.CharField()
    database = serializers.CharField()
    pgvector = serializers.CharField()


class IssuedKeySerializer(serializers.Serializer):
    """A key just created or rotated: the only answers that carry its secret `api_key`."""

    id = serializers.IntegerField()
    api_key = serializers.CharField()
    prefix = serializers.CharField()
    name = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)
    project = serializers.CharField(allow_null=True, help_text="tenant/project; null: tenant-wide")
    expires_at = serializers.DateTimeField(allow_null=True)
