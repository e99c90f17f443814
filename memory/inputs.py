"""What memory's operations accept: validation only (no permission checks, no writes).

The API, the job handlers, the SDK's local mode and the MCP server all validate with these, so a
limit is written once.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from memory.choices import OnDuplicate
from memory.services.documents import MAX_DOCUMENT_CHARS
from retrieval.choices import EvaluatorKind
from tenants.api.strict import StrictSerializer

MAX_TASK = 100_000
MAX_CODE = 1_000_000
MAX_METADATA_BYTES = 64 * 1024
# \A...\Z and no trimming: exactly what the schema's pattern says (no trailing newline).
SOURCE_RE = re.compile(r"\A[a-z0-9][a-z0-9_.:-]{0,63}\Z")
EVALUATOR_RE = re.compile(r"\A(human|api|import|agent_outcome|llm:[A-Za-z0-9_.:/-]{1,100})\Z")


# Epoch seconds of 0001-01-01 and 9999-12-31T23:59:59 UTC: the range a datetime can hold.
MIN_EPOCH = -62135596800
MAX_EPOCH = 253402300799


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "format": "date-time"},
            {"type": "number", "minimum": MIN_EPOCH, "maximum": MAX_EPOCH},
        ],
        "description": "ISO 8601 (naive times are UTC) or epoch seconds.",
    }
)
class TimestampField(serializers.Field):
    """ISO 8601 or epoch seconds; naive times are UTC."""

    default_error_messages = {
        "invalid": "Use an ISO 8601 date-time or epoch seconds.",
        "range": "The time is out of range.",
    }

    def to_internal_value(self, data: Any) -> datetime:
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int | float):
            try:
                return datetime.fromtimestamp(float(data), tz=UTC)
            except (OverflowError, OSError, ValueError):
                self.fail("range")
        if isinstance(data, str):
            text = data.strip()
            if re.fullmatch(r"-?\d+(\.\d+)?", text):
                return self.to_internal_value(float(text))
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                self.fail("invalid")
            if moment.tzinfo is None:
                return moment.replace(tzinfo=UTC)
            # As UTC: PostgreSQL refuses offsets past ±15:59, which ISO 8601 allows.
            try:
                return moment.astimezone(UTC)
            except OverflowError:
                self.fail("range")
        self.fail("invalid")
        raise AssertionError  # unreachable

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


@extend_schema_field(
    {"type": "object", "description": f"Free JSON, up to {MAX_METADATA_BYTES // 1024} KiB."}
)
class MetadataField(serializers.JSONField):
    """A JSON object of bounded size (validate_metadata)."""


def validate_metadata(value: Any) -> None:
    """A JSON object of bounded size."""
    if not isinstance(value, dict):
        raise serializers.ValidationError("Expected a JSON object.", code="invalid")
    if len(json.dumps(value, default=str)) > MAX_METADATA_BYTES:
        raise serializers.ValidationError(
            f"metadata exceeds {MAX_METADATA_BYTES} bytes.", code="too_large"
        )


class LearnSerializer(StrictSerializer):
    """POST /v1/learn."""

    task = serializers.CharField(max_length=MAX_TASK, trim_whitespace=False)
    code = serializers.CharField(max_length=MAX_CODE, trim_whitespace=False)
    output = serializers.CharField(
        max_length=MAX_CODE, required=False, allow_blank=True, allow_null=True, default=""
    )
    eval_score = serializers.FloatField(min_value=0, max_value=10, required=False, allow_null=True)
    source = serializers.RegexField(  # type: ignore[assignment]
        SOURCE_RE, required=False, default="api", trim_whitespace=False
    )
    run_id = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    external_id = serializers.CharField(max_length=255, required=False, allow_null=True)
    created_at = TimestampField(required=False, allow_null=True)
    metadata = MetadataField(required=False, default=dict, validators=[validate_metadata])
    on_duplicate = serializers.ChoiceField(choices=OnDuplicate.choices, default=OnDuplicate.SKIP)

    def validate_task(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("The task is blank.", code="blank")
        return value


MAX_LEARN_MANY = 1000


class LearnManyItemSerializer(LearnSerializer):
    """One item of learn_many: learn's fields but source and on_duplicate (given per call)."""

    source = None  # type: ignore[assignment]
    on_duplicate = None  # type: ignore[assignment]


class LearnManySerializer(StrictSerializer):
    """learn_many: up to MAX_LEARN_MANY items on the bulk path; replace_with_better is per item."""

    items = serializers.ListField(
        child=LearnManyItemSerializer(), min_length=1, max_length=MAX_LEARN_MANY
    )
    source = serializers.RegexField(SOURCE_RE, required=False, default="api")  # type: ignore[assignment]
    on_duplicate = serializers.ChoiceField(
        choices=[OnDuplicate.SKIP, OnDuplicate.KEEP_BOTH], default=OnDuplicate.SKIP
    )


class RecallSerializer(StrictSerializer):
    """POST /v1/recall."""

    task = serializers.CharField(max_length=20_000)
    limit = serializers.IntegerField(min_value=1, max_value=50, default=5)
    eval_weighted = serializers.BooleanField(default=True)
    recency_weight = serializers.FloatField(min_value=0, max_value=1, default=0)
    min_similarity = serializers.FloatField(
        min_value=0, max_value=1, required=False, allow_null=True
    )
    source = serializers.RegexField(  # type: ignore[assignment]
        SOURCE_RE, required=False, allow_null=True, trim_whitespace=False
    )
    explain = serializers.BooleanField(default=False)
    include_documents = serializers.BooleanField(default=False)


class PatternUpdateSerializer(StrictSerializer):
    """PATCH /v1/patterns/<id>: curation."""

    task = serializers.CharField(max_length=MAX_TASK, required=False)
    code = serializers.CharField(max_length=MAX_CODE, required=False)
    output = serializers.CharField(max_length=MAX_CODE, required=False, allow_blank=True)
    metadata = MetadataField(required=False, validators=[validate_metadata])
    archived = serializers.BooleanField(required=False)


class EvaluationCreateSerializer(StrictSerializer):
    """POST /v1/patterns/<id>/evaluations."""

    score = serializers.FloatField(min_value=0, max_value=10)
    feedback = serializers.CharField(
        max_length=10_000, required=False, allow_blank=True, default=""
    )
    evaluator = serializers.RegexField(
        EVALUATOR_RE, required=False, default=EvaluatorKind.HUMAN, trim_whitespace=False
    )


class EvaluateSerializer(StrictSerializer):
    """POST /v1/evaluate."""

    task = serializers.CharField(max_length=MAX_TASK)
    code = serializers.CharField(max_length=MAX_CODE)
    output = serializers.CharField(
        max_length=MAX_CODE, required=False, allow_blank=True, allow_null=True
    )
    num_evals = serializers.IntegerField(min_value=1, max_value=5, default=3)
    pattern_id = serializers.IntegerField(required=False, allow_null=True)


class OutcomeSerializer(StrictSerializer):
    """POST /v1/outcomes: credit recalled patterns with a run's outcome."""

    pattern_ids = serializers.ListField(child=serializers.IntegerField(), max_length=100)
    score = serializers.FloatField(min_value=0, max_value=10)
    feedback = serializers.CharField(
        max_length=10_000, required=False, allow_blank=True, default=""
    )


class DocumentCreateSerializer(StrictSerializer):
    """POST /v1/documents as JSON."""

    name = serializers.CharField(max_length=255)
    text = serializers.CharField(trim_whitespace=False, max_length=MAX_DOCUMENT_CHARS)
    content_type = serializers.ChoiceField(
        choices=["text/plain", "text/markdown"], default="text/plain"
    )
    external_id = serializers.CharField(max_length=255, required=False, allow_null=True)


class AgingSerializer(serializers.Serializer):
    """POST /v1/aging: it takes no parameters (an empty JSON object, or no body)."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if data:
            raise serializers.ValidationError(
                {"non_field_errors": ["Aging takes no parameters."]}, code="invalid"
            )
        return {}


class FeedbackQuerySerializer(serializers.Serializer):
    """GET /v1/feedback."""

    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)


class PatternListSerializer(StrictSerializer):
    """A page of the project's patterns, newest first (the MCP server's list_patterns)."""

    q = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    source = serializers.RegexField(SOURCE_RE, required=False)  # type: ignore[assignment]
    run_id = serializers.CharField(max_length=255, required=False)
    min_eval = serializers.FloatField(min_value=0, max_value=10, required=False)
    archived = serializers.ChoiceField(choices=["false", "true", "all"], default="false")
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)
    offset = serializers.IntegerField(min_value=0, max_value=100_000, default=0)


class PatternRefSerializer(StrictSerializer):
    """A pattern of the caller's project, by id."""

    pattern_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class DocumentUploadSerializer(StrictSerializer):
    """POST /v1/documents as multipart: a `file`, and optionally its name and external id."""

    file = serializers.FileField(allow_empty_file=True)
    # A form cannot send null: an empty name or external_id is none.
    name = serializers.CharField(max_length=255, required=False, allow_blank=True)
    external_id = serializers.CharField(
        max_length=255, required=False, allow_null=True, allow_blank=True
    )

    def validate_external_id(self, value: str | None) -> str | None:
        return value or None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("name"):  # an empty name is none: the file's own name is used
            attrs.pop("name", None)
        return attrs
