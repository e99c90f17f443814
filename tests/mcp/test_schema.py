"""Tool schemas are read off the serializers that validate the tools' arguments."""

from __future__ import annotations

from rest_framework import serializers

from engramia_mcp.schema import field_schema, input_schema
from engramia_mcp.tools import TOOLS
from memory.inputs import SOURCE_RE, LearnSerializer


class Sample(serializers.Serializer):
    name = serializers.CharField(max_length=10)
    note = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    count = serializers.IntegerField(min_value=1, max_value=9, default=3)
    ratio = serializers.FloatField(min_value=0, max_value=1, required=False)
    flag = serializers.BooleanField(default=False)
    kind = serializers.ChoiceField(choices=["a", "b"], default="a")
    ids = serializers.ListField(child=serializers.IntegerField(), max_length=4)
    source = serializers.RegexField(SOURCE_RE, required=False)
    extra = serializers.JSONField(required=False)


def test_fields_become_json_schema_with_their_limits():
    schema = input_schema(Sample, {"name": "Who."}, exposed=None)
    props = schema["properties"]
    assert props["name"] == {
        "type": "string",
        "maxLength": 10,
        "minLength": 1,
        "description": "Who.",
    }
    assert props["note"] == {"type": ["string", "null"]}
    assert props["count"] == {"type": "integer", "minimum": 1, "maximum": 9, "default": 3}
    assert props["ratio"] == {"type": "number", "minimum": 0, "maximum": 1}
    assert props["flag"] == {"type": "boolean", "default": False}
    assert props["kind"] == {"type": "string", "enum": ["a", "b"], "default": "a"}
    assert props["ids"] == {"type": "array", "items": {"type": "integer"}, "maxItems": 4}
    assert props["source"]["pattern"] == SOURCE_RE.pattern
    assert props["extra"] == {"type": "object"}
    assert schema["required"] == ["name", "ids"] and schema["additionalProperties"] is False


def test_a_tool_offers_only_the_fields_it_exposes():
    learn = next(tool for tool in TOOLS if tool.name == "learn")
    schema = learn.schema()
    assert "created_at" not in schema["properties"] and "created_at" in LearnSerializer().fields
    assert schema["properties"]["on_duplicate"]["default"] == "skip"
    assert learn.accepted == set(schema["properties"])


def test_every_tool_describes_every_argument():
    for tool in TOOLS:
        for name, schema in tool.schema()["properties"].items():
            assert schema.get("description"), (tool.name, name)
            assert field_schema(tool.input().fields[name]).keys() <= schema.keys()
