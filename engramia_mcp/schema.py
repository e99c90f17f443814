"""A tool's JSON Schema, read off the DRF serializer that validates its input.

The serializer in `inputs.py` is the one place a limit is written; the schema a model sees is
derived from it here (types, bounds, choices, defaults) and only the prose is the tool's own.
Validation stays with the serializer: the schema tells a model what to send, it never decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.validators import RegexValidator
from rest_framework import fields, serializers


def _number_bounds(field: Any) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    if getattr(field, "min_value", None) is not None:
        bounds["minimum"] = field.min_value
    if getattr(field, "max_value", None) is not None:
        bounds["maximum"] = field.max_value
    return bounds


def _string(field: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if getattr(field, "max_length", None) is not None:
        schema["maxLength"] = field.max_length
    if getattr(field, "min_length", None) is not None:
        schema["minLength"] = field.min_length
    elif not getattr(field, "allow_blank", False):
        schema["minLength"] = 1
    return schema


def field_schema(field: fields.Field) -> dict[str, Any]:
    """The JSON Schema of one serializer field (its type, bounds and choices)."""
    schema: dict[str, Any]
    if isinstance(field, fields.BooleanField):
        schema = {"type": "boolean"}
    elif isinstance(field, fields.IntegerField):
        schema = {"type": "integer", **_number_bounds(field)}
    elif isinstance(field, fields.FloatField):
        schema = {"type": "number", **_number_bounds(field)}
    elif isinstance(field, fields.ChoiceField):
        schema = {"type": "string", "enum": [str(choice) for choice in field.choices]}
    elif isinstance(field, fields.ListField):
        schema = {"type": "array", "items": field_schema(field.child)}
        if field.max_length is not None:
            schema["maxItems"] = field.max_length
    elif isinstance(field, fields.JSONField):
        schema = {"type": "object"}
    elif isinstance(field, fields.RegexField):
        schema = _string(field)
        patterns = [
            str(getattr(v.regex, "pattern", v.regex))
            for v in field.validators
            if isinstance(v, RegexValidator)
        ]
        if patterns:
            schema["pattern"] = patterns[0]
    elif isinstance(field, fields.CharField):
        schema = _string(field)
    else:  # a custom field (e.g. a timestamp): described in prose by the tool
        schema = {}
    if getattr(field, "allow_null", False) and "type" in schema:
        schema["type"] = [schema["type"], "null"]
    default = field.default
    if default is not fields.empty and not callable(default):
        # A TextChoices member is a str subclass: send the plain value.
        schema["default"] = str(default) if isinstance(default, str) else default
    return schema


def input_schema(
    serializer_class: type[serializers.Serializer],
    descriptions: Mapping[str, str],
    exposed: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The object schema of a tool's arguments: the serializer's fields (or those exposed)."""
    declared = serializer_class().fields
    names = list(exposed) if exposed is not None else list(declared)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name in names:
        field = declared[name]
        schema = field_schema(field)
        if name in descriptions:
            schema["description"] = descriptions[name]
        properties[name] = schema
        if field.required:
            required.append(name)
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema
