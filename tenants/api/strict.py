"""Serializers that refuse fields they do not know, so typos fail loudly instead of vanishing.

They also refuse JSON of the wrong type where DRF would coerce it (`"limit": "5"`, `"task": 7`,
`"explain": 0`): the API documents JSON types, and a value of another type is a mistake to
name, not to guess at. Form data (all strings) is left to DRF's own parsing.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

# What JSON type each kind of field takes, most specific first (a ChoiceField is no CharField).
_JSON_TYPES: tuple[tuple[type[serializers.Field], tuple[type, ...], str], ...] = (
    (serializers.BooleanField, (bool,), "a boolean"),
    (serializers.IntegerField, (int,), "an integer"),
    (serializers.FloatField, (int, float), "a number"),
    (serializers.ChoiceField, (str,), "a string"),
    (serializers.CharField, (str,), "a string"),
    (serializers.ListField, (list,), "an array"),
    (serializers.DictField, (dict,), "an object"),
)


def json_type_error(field: serializers.Field, value: Any) -> str | None:
    """Why value is not the JSON type field takes (None: it is, or the field takes any)."""
    if value is None:
        return None  # allow_null is the field's own rule
    for kind, types, name in _JSON_TYPES:
        if isinstance(field, kind):
            if isinstance(value, bool) and bool not in types:
                return f"Expected {name}, not a boolean."
            if not isinstance(value, types):
                return f"Expected {name}."
            break
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        for index, item in enumerate(value):
            problem = json_type_error(field.child, item)
            if problem:
                return f"Item {index}: {problem}"
    return None


class StrictMixin:
    """Refuse unknown top-level fields and JSON values of the wrong type: a 400 naming each."""

    check_json_types = True

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": ["Expected a JSON object."]}, code="invalid"
            )
        fields = {name: f for name, f in self.fields.items() if not f.read_only}  # type: ignore[attr-defined]
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise serializers.ValidationError(
                {name: ["Unknown field."] for name in unknown}, code="unknown_field"
            )
        if self.check_json_types and not hasattr(data, "getlist"):  # JSON, not a form
            wrong = {
                name: [problem]
                for name, value in data.items()
                if (problem := json_type_error(fields[name], value))
            }
            if wrong:
                raise serializers.ValidationError(wrong, code="invalid")
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictSerializer(StrictMixin, serializers.Serializer):
    """A plain serializer that refuses unknown fields and JSON of the wrong type."""


class StrictQuerySerializer(StrictSerializer):
    """Query parameters: unknown ones are refused, and their text is parsed as DRF does."""

    check_json_types = False
