"""What the session operations accept: session ids, reads and the items to append."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from conversations.services import (
    DEFAULT_PAGE,
    MAX_ITEMS_PER_CALL,
    MAX_LIMIT,
    MAX_PAGE,
    MAX_SESSION_ID,
    session_items_problem,
)
from tenants.api.strict import StrictQuerySerializer, StrictSerializer


class SessionIdSerializer(StrictSerializer):
    """The session id from the URL: any characters but U+0000, trimmed, 1-255 of them."""

    session_id = serializers.CharField(max_length=MAX_SESSION_ID)


class SessionItemsQuerySerializer(StrictQuerySerializer):
    """GET /v1/sessions/<id>/items: the latest `limit` items, older than position `before`."""

    limit = serializers.IntegerField(
        min_value=0, max_value=MAX_PAGE, default=DEFAULT_PAGE, help_text="The latest N items."
    )
    before = serializers.IntegerField(
        min_value=1, required=False, help_text="Only items older than this (`next_before`)."
    )


@extend_schema_field(
    {"type": "array", "items": {"type": "object"}, "minItems": 1, "maxItems": MAX_ITEMS_PER_CALL}
)
class SessionItemsField(serializers.ListField):
    """A list of JSON objects (each checked by session_items_problem)."""


class SessionItemsAddSerializer(StrictSerializer):
    """POST /v1/sessions/<id>/items: {"items": [<JSON object>, ...]}."""

    items = SessionItemsField(allow_empty=False, max_length=MAX_ITEMS_PER_CALL)

    def validate_items(self, items: list[Any]) -> list[Any]:
        problem = session_items_problem(items)
        if problem:
            raise serializers.ValidationError(problem, code="invalid")
        return items


class SessionReadSerializer(StrictSerializer):
    """A whole-session read in-process (the SDK's local mode): `limit` omitted means every item."""

    limit = serializers.IntegerField(min_value=0, max_value=MAX_LIMIT, required=False)
