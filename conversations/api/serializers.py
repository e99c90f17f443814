"""Shapes of the session API's answers: they document the responses and validate nothing."""

from __future__ import annotations

from rest_framework import serializers


class SessionPageSerializer(serializers.Serializer):
    """GET /v1/sessions/<id>/items: the items oldest first; `next_before` reads older ones."""

    session_id = serializers.CharField()
    items = serializers.ListField(child=serializers.JSONField())
    next_before = serializers.IntegerField(allow_null=True)


class SessionItemsAddedSerializer(serializers.Serializer):
    """POST /v1/sessions/<id>/items."""

    session_id = serializers.CharField()
    added = serializers.IntegerField()


class SessionPoppedSerializer(serializers.Serializer):
    """POST /v1/sessions/<id>/pop: the latest item, removed; null when the session is empty."""

    session_id = serializers.CharField()
    item = serializers.JSONField(allow_null=True)


class SessionClearedSerializer(serializers.Serializer):
    """DELETE /v1/sessions/<id>."""

    session_id = serializers.CharField()
    removed = serializers.IntegerField()
