"""Serializers that refuse fields they do not know, so typos fail loudly instead of vanishing."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class StrictMixin:
    """Reject unknown top-level fields with a 400 naming each one."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": ["Expected a JSON object."]}, code="invalid"
            )
        known = {name for name, field in self.fields.items() if not field.read_only}  # type: ignore[attr-defined]
        unknown = sorted(set(data) - known)
        if unknown:
            raise serializers.ValidationError(
                {name: ["Unknown field."] for name in unknown}, code="unknown_field"
            )
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictSerializer(StrictMixin, serializers.Serializer):
    """A plain serializer that refuses unknown fields."""
