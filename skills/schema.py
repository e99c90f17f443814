"""Rules for what a skill may hold (Django-free): tool names, parameter schemas, tags.

Both OpenAI and Anthropic accept tool names matching ^[a-zA-Z0-9_-]{1,64}$ and want the
parameters as a JSON Schema whose top level is an object, so the registry refuses anything else
at the door rather than at export time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

TOOL_NAME = re.compile(r"\A[a-zA-Z0-9_-]{1,64}\Z")  # \Z: no trailing newline either
TAG = re.compile(r"^[a-z0-9][a-z0-9_.:/+-]{0,49}$")
# A tag as sent: normalise_tags strips and lower-cases it before TAG checks it.
TAG_INPUT = re.compile(r"\A\s*[a-zA-Z0-9][a-zA-Z0-9_.:/+-]{0,49}\s*\Z")
# The `tags` query value: tags separated by commas (empty pieces are skipped).
TAG_LIST_INPUT = re.compile(
    r"\A\s*([a-zA-Z0-9][a-zA-Z0-9_.:/+-]{0,49}\s*)?(,\s*([a-zA-Z0-9][a-zA-Z0-9_.:/+-]{0,49}\s*)?)*\Z"
)
TAG_RULE = "Use 1-50 lowercase letters, digits and _ . : / + - (a tag)."
TOOL_NAME_RULE = "Use 1-64 letters, digits, underscores or hyphens (a valid tool name)."
MAX_TAGS = 32
MAX_SCHEMA_BYTES = 64 * 1024
MAX_SCHEMA_DEPTH = 32

# Keywords OpenAI's strict mode cannot honour; a schema using any of them exports as non-strict.
_NOT_STRICT_KEYWORDS = frozenset(
    {
        "oneOf",
        "not",
        "if",
        "then",
        "else",
        "dependentSchemas",
        "dependentRequired",
        "patternProperties",
        "unevaluatedProperties",
        "propertyNames",
        "$dynamicRef",
    }
)


class SkillRuleError(ValueError):
    """A name, schema or tag the registry refuses; `field` names what was wrong."""

    def __init__(self, field: str, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.code = code


def empty_parameters() -> dict[str, Any]:
    """The parameters of a tool that takes no arguments."""
    return {"type": "object", "properties": {}}


def check_tool_name(name: Any) -> None:
    """Refuse names a provider would reject as a tool name."""
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise SkillRuleError(
            "name",
            TOOL_NAME_RULE,
            "invalid_tool_name",
        )


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_SCHEMA_DEPTH:
            return depth
        children = node.values() if isinstance(node, dict) else node
        if isinstance(node, dict | list):
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def check_parameters_schema(schema: Any) -> None:
    """Refuse anything but a valid JSON Schema (draft 2020-12) whose top level is an object."""
    if not isinstance(schema, dict):
        raise SkillRuleError("parameters", "Must be a JSON Schema object.", "invalid_schema")
    if _depth(schema) > MAX_SCHEMA_DEPTH:
        raise SkillRuleError(
            "parameters", f"Nested deeper than {MAX_SCHEMA_DEPTH} levels.", "invalid_schema"
        )
    try:
        size = len(json.dumps(schema, allow_nan=False).encode())
    except (TypeError, ValueError):
        raise SkillRuleError("parameters", "Must be plain JSON.", "invalid_schema") from None
    if size > MAX_SCHEMA_BYTES:
        raise SkillRuleError(
            "parameters", f"Larger than {MAX_SCHEMA_BYTES} bytes.", "schema_too_large"
        )
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = exc.json_path if exc.json_path != "$" else "the top level"
        raise SkillRuleError(
            "parameters", f"Not a valid JSON Schema at {where}: {exc.message}", "invalid_schema"
        ) from None
    if schema.get("type") != "object":
        raise SkillRuleError(
            "parameters", 'The top level must be {"type": "object", ...}.', "invalid_schema"
        )


def normalise_tags(tags: Any) -> list[str]:
    """Lower-cased, stripped, de-duplicated tags in their given order; refuses bad ones."""
    if tags is None:
        return []
    if isinstance(tags, str) or not isinstance(tags, Iterable):
        raise SkillRuleError("tags", "Must be a list of strings.", "invalid_tags")
    result: list[str] = []
    for tag in tags:
        if not isinstance(tag, str):
            raise SkillRuleError("tags", "Must be a list of strings.", "invalid_tags")
        cleaned = tag.strip().lower()
        if not TAG.match(cleaned):
            raise SkillRuleError(
                "tags",
                f"{tag!r} is not a tag: use 1-50 lowercase letters, digits and _ . : / + -.",
                "invalid_tags",
            )
        if cleaned not in result:
            result.append(cleaned)
    if len(result) > MAX_TAGS:
        raise SkillRuleError("tags", f"At most {MAX_TAGS} tags.", "invalid_tags")
    return result


def _object_is_closed(node: Mapping[str, Any]) -> bool:
    properties = node.get("properties", {})
    if not isinstance(properties, dict) or node.get("additionalProperties") is not False:
        return False
    return sorted(node.get("required", [])) == sorted(properties)


def is_strict_schema(schema: Mapping[str, Any]) -> bool:
    """True when OpenAI's strict mode accepts the schema exactly as written.

    Strict mode needs every object closed (additionalProperties false) with every property
    required; anything less is exported with strict false rather than silently rewritten.
    """
    if "anyOf" in schema:  # a strict root must be a plain object
        return False
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if _NOT_STRICT_KEYWORDS & node.keys():
            return False
        node_type = node.get("type")
        is_object = node_type == "object" or (isinstance(node_type, list) and "object" in node_type)
        if (is_object or "properties" in node) and not _object_is_closed(node):
            return False
        for key in ("properties", "$defs", "definitions"):
            if isinstance(node.get(key), dict):
                stack.extend(node[key].values())
        for key in ("items", "anyOf", "allOf", "prefixItems"):
            if key in node:
                stack.append(node[key])
    return True
