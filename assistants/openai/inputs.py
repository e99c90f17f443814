"""What the Assistants-compatible API accepts: OpenAI's request bodies, validated once.

Unknown fields are ignored (as OpenAI's SDKs expect of a server); a field that is present is
checked, and a refusal names it (`param` in OpenAI's error body).
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from assistants.openai.fields import REASONING_EFFORTS as EFFORTS
from assistants.openai.fields import (
    AttachmentsField,
    ContentField,
    MetadataField,
    NoV1FileIds,
    ResponseFormatField,
    ToolChoiceField,
    ToolResourcesField,
    ToolsField,
    TruncationStrategyField,
)

MAX_INSTRUCTIONS = 256_000
MAX_INITIAL_MESSAGES = 32
FILE_PURPOSES = ("assistants", "user_data")


class AssistantInput(serializers.Serializer):
    """POST /assistants (and, every field optional, POST /assistants/<id>)."""

    model = serializers.CharField(max_length=256)
    name = serializers.CharField(max_length=256, allow_null=True, allow_blank=True, required=False)
    description = serializers.CharField(
        max_length=512, allow_null=True, allow_blank=True, required=False
    )
    instructions = serializers.CharField(
        max_length=MAX_INSTRUCTIONS,
        allow_null=True,
        allow_blank=True,
        required=False,
        trim_whitespace=False,
    )
    tools = ToolsField()
    tool_resources = ToolResourcesField()
    metadata = MetadataField()
    temperature = serializers.FloatField(min_value=0, max_value=2, allow_null=True, required=False)
    top_p = serializers.FloatField(min_value=0, max_value=1, allow_null=True, required=False)
    response_format = ResponseFormatField()
    reasoning_effort = serializers.ChoiceField(EFFORTS, allow_null=True, required=False)
    file_ids = NoV1FileIds()


class AssistantUpdateInput(AssistantInput):
    """POST /assistants/<id>: the fields given change."""

    model = serializers.CharField(max_length=256, required=False)


class MessageInput(serializers.Serializer):
    """POST /threads/<id>/messages, and each of a new thread's messages."""

    role = serializers.ChoiceField(("user", "assistant"))
    content = ContentField()
    attachments = AttachmentsField()
    metadata = MetadataField()
    file_ids = NoV1FileIds()


class ThreadInput(serializers.Serializer):
    """POST /threads."""

    messages = MessageInput(many=True, required=False, allow_null=True)
    tool_resources = ToolResourcesField()
    metadata = MetadataField()

    def validate_messages(self, value: Any) -> Any:
        if value and len(value) > MAX_INITIAL_MESSAGES:
            raise serializers.ValidationError(
                f"At most {MAX_INITIAL_MESSAGES} messages.", code="invalid"
            )
        return value or []


class ThreadUpdateInput(serializers.Serializer):
    """POST /threads/<id>."""

    tool_resources = ToolResourcesField()
    metadata = MetadataField()


class MetadataInput(serializers.Serializer):
    """POST /threads/<t>/messages/<m> and /threads/<t>/runs/<r>: metadata only."""

    metadata = MetadataField()


class RunInput(serializers.Serializer):
    """POST /threads/<id>/runs."""

    assistant_id = serializers.CharField(max_length=64)
    model = serializers.CharField(max_length=256, allow_null=True, required=False)
    instructions = serializers.CharField(
        max_length=MAX_INSTRUCTIONS, allow_null=True, allow_blank=True, required=False
    )
    additional_instructions = serializers.CharField(
        max_length=MAX_INSTRUCTIONS, allow_null=True, allow_blank=True, required=False
    )
    additional_messages = MessageInput(many=True, required=False, allow_null=True)
    tools = ToolsField()
    metadata = MetadataField()
    temperature = serializers.FloatField(min_value=0, max_value=2, allow_null=True, required=False)
    top_p = serializers.FloatField(min_value=0, max_value=1, allow_null=True, required=False)
    stream = serializers.BooleanField(allow_null=True, required=False)
    max_prompt_tokens = serializers.IntegerField(min_value=1, allow_null=True, required=False)
    max_completion_tokens = serializers.IntegerField(min_value=1, allow_null=True, required=False)
    truncation_strategy = TruncationStrategyField()
    tool_choice = ToolChoiceField()
    parallel_tool_calls = serializers.BooleanField(allow_null=True, required=False)
    response_format = ResponseFormatField()
    reasoning_effort = serializers.ChoiceField(EFFORTS, allow_null=True, required=False)

    def validate_additional_messages(self, value: Any) -> Any:
        if value and len(value) > MAX_INITIAL_MESSAGES:
            raise serializers.ValidationError(
                f"At most {MAX_INITIAL_MESSAGES} messages.", code="invalid"
            )
        return value or []


class ThreadAndRunInput(RunInput):
    """POST /threads/runs: a new thread (optional body) and its first run."""

    thread = ThreadInput(required=False, allow_null=True)
    tool_resources = ToolResourcesField()
    # Not a parameter of this endpoint (the new thread's messages come in `thread`).
    additional_messages = None  # type: ignore[assignment]


class ToolOutputInput(serializers.Serializer):
    """One answer to a tool call."""

    tool_call_id = serializers.CharField(max_length=64)
    output = serializers.CharField(
        allow_blank=True, max_length=512_000, trim_whitespace=False, default=""
    )


class ToolOutputsInput(serializers.Serializer):
    """POST /threads/<t>/runs/<r>/submit_tool_outputs."""

    tool_outputs = ToolOutputInput(many=True, allow_empty=False)
    stream = serializers.BooleanField(allow_null=True, required=False)


class IncludeInput(serializers.Serializer):
    """The `include[]` query parameter of run creation and steps."""

    include = serializers.ListField(
        child=serializers.ChoiceField(
            ("step_details.tool_calls[*].file_search.results[*].content",)
        ),
        required=False,
    )


class ListInput(serializers.Serializer):
    """Cursor list parameters: limit (1-100), order, after, before."""

    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)
    order = serializers.ChoiceField(("asc", "desc"), default="desc")
    after = serializers.CharField(max_length=64, required=False)
    before = serializers.CharField(max_length=64, required=False)


class MessageListInput(ListInput):
    """GET /threads/<id>/messages also filters by run."""

    run_id = serializers.CharField(max_length=64, required=False)


class FileListInput(ListInput):
    """GET /files also filters by purpose."""

    purpose = serializers.CharField(max_length=32, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=10_000, default=10_000)


class FileInput(serializers.Serializer):
    """POST /files (multipart): the file and its purpose."""

    file = serializers.FileField()
    purpose = serializers.CharField(max_length=32)

    def validate_purpose(self, value: str) -> str:
        if value == "vision":
            raise serializers.ValidationError(
                "Images are not supported here: runs read and write text only.",
                code="unsupported_tool",
            )
        if value not in FILE_PURPOSES:
            raise serializers.ValidationError(
                f"purpose must be one of {', '.join(FILE_PURPOSES)}.", code="invalid"
            )
        return value


class VectorStoreInput(serializers.Serializer):
    """POST /vector_stores (and, without file_ids, POST /vector_stores/<id>)."""

    name = serializers.CharField(max_length=256, allow_null=True, allow_blank=True, required=False)
    file_ids = serializers.ListField(
        child=serializers.CharField(max_length=64), max_length=500, required=False
    )
    metadata = MetadataField()
    expires_after = serializers.JSONField(required=False, allow_null=True)
    chunking_strategy = serializers.JSONField(required=False, allow_null=True)


class VectorStoreFileInput(serializers.Serializer):
    """POST /vector_stores/<id>/files."""

    file_id = serializers.CharField(max_length=64)
    attributes = serializers.JSONField(required=False, allow_null=True)
    chunking_strategy = serializers.JSONField(required=False, allow_null=True)


class FileBatchInput(serializers.Serializer):
    """POST /vector_stores/<id>/file_batches."""

    file_ids = serializers.ListField(
        child=serializers.CharField(max_length=64), min_length=1, max_length=500
    )
    attributes = serializers.JSONField(required=False, allow_null=True)
    chunking_strategy = serializers.JSONField(required=False, allow_null=True)


class SearchInput(serializers.Serializer):
    """POST /vector_stores/<id>/search."""

    query = serializers.JSONField()
    max_num_results = serializers.IntegerField(min_value=1, max_value=50, default=10)
    rewrite_query = serializers.BooleanField(default=False)

    def validate_query(self, value: Any) -> str:
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            value = " ".join(value)
        if not isinstance(value, str) or not value.strip() or len(value) > 20_000:
            raise serializers.ValidationError("A non-empty query string.", code="invalid")
        return value
