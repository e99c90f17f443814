"""Fields of OpenAI's Assistants v2 request bodies: validated and normalized, refusals named.

A refusal names the place it is about (`tools.0` reaches the client as `param: "tools[0]"`).
What Engramia cannot do is refused with code `unsupported_tool` (code_interpreter, and images:
runs here read and write text only); Assistants v1 payloads (`retrieval`, `file_ids`) are
refused so code written for v1 learns what changed instead of losing data quietly.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

MAX_TOOLS = 128
MAX_METADATA_PAIRS = 16
FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
UNSUPPORTED = "unsupported_tool"
CODE_INTERPRETER_REFUSED = (
    "code_interpreter is not supported by Engramia's Assistants-compatible API (no sandbox runs "
    "here, so no image outputs or file_path annotations either); remove it or run that code "
    "yourself as a function tool."
)
IMAGES_REFUSED = (
    "Image content is not supported: runs here read and write text only. Send the text, or "
    "describe the image in words."
)
RETRIEVAL_REFUSED = (
    "The retrieval tool is Assistants v1; v2 (what this API speaks) calls it file_search, "
    "searching vector stores."
)
FILE_IDS_REFUSED = (
    "file_ids is Assistants v1; in v2 put files in a vector store (tool_resources.file_search) "
    "or attach them to a message (attachments)."
)


def refusal(path: str, message: str, code: str = "invalid") -> serializers.ValidationError:
    """A 400 about the field at the dotted path below the current one."""
    detail: Any = [ErrorDetail(message, code=code)]
    for part in reversed(path.split(".")):
        detail = {part: detail}
    return serializers.ValidationError(detail)


def _object(value: Any, path: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        if path:
            raise refusal(path, "Expected an object.")
        raise serializers.ValidationError("Expected an object.", code="invalid")
    return value


class JSONValueField(serializers.Field):
    """A field of OpenAI's free-form JSON: validated on the way in, shown as stored."""

    def to_representation(self, value: Any) -> Any:
        return value


class OptionalJSONField(JSONValueField):
    """A JSON field a request may leave out or send as null."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)


class MetadataField(OptionalJSONField):
    """Up to 16 string pairs: keys of at most 64 characters, values of at most 512."""

    def to_internal_value(self, data: Any) -> dict[str, str]:
        data = _object(data)
        if len(data) > MAX_METADATA_PAIRS:
            raise serializers.ValidationError(
                f"At most {MAX_METADATA_PAIRS} pairs are allowed.", code="invalid"
            )
        for key, value in data.items():
            if len(key) > 64:
                raise refusal(key, "Keys are at most 64 characters.")
            if not isinstance(value, str) or len(value) > 512:
                raise refusal(key, "Values are strings of at most 512 characters.")
        return dict(data)


def _function(index: int, tool: dict[str, Any]) -> dict[str, Any]:
    function = _object(tool.get("function"), f"{index}.function")
    name = function.get("name")
    if not isinstance(name, str) or not FUNCTION_NAME.match(name):
        raise refusal(
            f"{index}.function.name",
            "A function name is 1-64 letters, digits, underscores or dashes.",
        )
    description = function.get("description") or ""
    if not isinstance(description, str) or len(description) > 1024:
        raise refusal(f"{index}.function.description", "A string of at most 1024 characters.")
    parameters = function.get("parameters")
    if parameters is None:
        parameters = {"type": "object", "properties": {}}
    _object(parameters, f"{index}.function.parameters")
    normalized = {"name": name, "description": description, "parameters": parameters}
    if function.get("strict") is not None:
        normalized["strict"] = bool(function["strict"])
    return {"type": "function", "function": normalized}


def _file_search(index: int, tool: dict[str, Any]) -> dict[str, Any]:
    options = tool.get("file_search") or {}
    _object(options, f"{index}.file_search")
    limit = options.get("max_num_results", 20)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 50:
        raise refusal(f"{index}.file_search.max_num_results", "An integer from 1 to 50.")
    ranking = options.get("ranking_options") or {}
    threshold = _object(ranking, f"{index}.file_search.ranking_options").get("score_threshold", 0)
    if not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
        raise refusal(
            f"{index}.file_search.ranking_options.score_threshold", "A number from 0 to 1."
        )
    return {
        "type": "file_search",
        "file_search": {
            "max_num_results": limit,
            "ranking_options": {"ranker": "default_2024_08_21", "score_threshold": threshold},
        },
    }


class ToolsField(OptionalJSONField):
    """Function and file_search tools; code_interpreter and v1's retrieval are refused."""

    def to_internal_value(self, data: Any) -> list[dict[str, Any]]:
        if not isinstance(data, list):
            raise serializers.ValidationError("Expected a list of tools.", code="invalid")
        if len(data) > MAX_TOOLS:
            raise serializers.ValidationError(f"At most {MAX_TOOLS} tools.", code="invalid")
        tools, names = [], set()
        for index, raw in enumerate(data):
            tool = _object(raw, str(index))
            kind = tool.get("type")
            if kind == "code_interpreter":
                raise refusal(str(index), CODE_INTERPRETER_REFUSED, UNSUPPORTED)
            if kind == "retrieval":
                raise refusal(str(index), RETRIEVAL_REFUSED, UNSUPPORTED)
            if kind == "function":
                tool = _function(index, tool)
                name = tool["function"]["name"]
                if name in names:
                    raise refusal(f"{index}.function.name", f"Two tools are named {name}.")
                names.add(name)
            elif kind == "file_search":
                tool = _file_search(index, tool)
            else:
                raise refusal(
                    f"{index}.type", "A tool's type is function or file_search.", UNSUPPORTED
                )
            tools.append(tool)
        return tools


class ToolResourcesField(OptionalJSONField):
    """{"file_search": {"vector_store_ids": [...]} }; code_interpreter resources are refused."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        data = _object(data)
        if data.get("code_interpreter"):
            raise refusal("code_interpreter", CODE_INTERPRETER_REFUSED, UNSUPPORTED)
        search = _object(data.get("file_search") or {}, "file_search")
        ids = search.get("vector_store_ids") or []
        if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
            raise refusal("file_search.vector_store_ids", "Expected a list of vector store ids.")
        if len(ids) > 1:
            raise refusal("file_search.vector_store_ids", "At most one vector store.")
        stores = search.get("vector_stores") or []
        if not isinstance(stores, list) or len(stores) > 1:
            raise refusal("file_search.vector_stores", "At most one vector store to create.")
        new_stores = []
        for index, store in enumerate(stores):
            file_ids = _object(store, f"file_search.vector_stores.{index}").get("file_ids") or []
            if not isinstance(file_ids, list) or not all(isinstance(f, str) for f in file_ids):
                raise refusal(f"file_search.vector_stores.{index}.file_ids", "A list of file ids.")
            new_stores.append({"file_ids": file_ids, "metadata": store.get("metadata") or {}})
        if ids and new_stores:
            raise refusal("file_search", "Give vector_store_ids or vector_stores, not both.")
        resources: dict[str, Any] = {}
        if ids or new_stores:
            resources["file_search"] = {"vector_store_ids": list(ids)}
            if new_stores:
                resources["file_search"]["vector_stores"] = new_stores
        return resources


class ResponseFormatField(OptionalJSONField):
    """ "auto", {"type": "text"}, {"type": "json_object"} or {"type": "json_schema", ...}."""

    def to_internal_value(self, data: Any) -> Any:
        if data == "auto":
            return "auto"
        data = _object(data)
        kind = data.get("type")
        if kind in ("text", "json_object"):
            return {"type": kind}
        if kind != "json_schema":
            raise refusal("type", "One of text, json_object, json_schema.")
        schema = _object(data.get("json_schema"), "json_schema")
        name = schema.get("name")
        if not isinstance(name, str) or not FUNCTION_NAME.match(name):
            raise refusal("json_schema.name", "1-64 letters, digits, underscores or dashes.")
        _object(schema.get("schema") or {}, "json_schema.schema")
        return {"type": "json_schema", "json_schema": dict(schema)}


class ToolChoiceField(OptionalJSONField):
    """ "none", "auto", "required", a named function, or {"type": "file_search"}."""

    def to_internal_value(self, data: Any) -> Any:
        if data in ("none", "auto", "required"):
            return data
        data = _object(data)
        kind = data.get("type")
        if kind == "code_interpreter":
            raise serializers.ValidationError(CODE_INTERPRETER_REFUSED, code=UNSUPPORTED)
        if kind == "file_search":
            return {"type": "file_search"}
        if kind == "function":
            name = _object(data.get("function"), "function").get("name")
            if not isinstance(name, str) or not FUNCTION_NAME.match(name):
                raise refusal("function.name", "A function name.")
            return {"type": "function", "function": {"name": name}}
        raise serializers.ValidationError(
            "One of none, auto, required, or a tool object.", code="invalid"
        )


class TruncationStrategyField(OptionalJSONField):
    """{"type": "auto"} or {"type": "last_messages", "last_messages": N}."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        data = _object(data)
        kind = data.get("type")
        if kind == "auto":
            return {"type": "auto", "last_messages": None}
        if kind != "last_messages":
            raise refusal("type", "auto or last_messages.")
        count = data.get("last_messages")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise refusal("last_messages", "A positive integer.")
        return {"type": "last_messages", "last_messages": count}


def _content_part(index: int, part: Any) -> str:
    part = _object(part, str(index))
    kind = part.get("type")
    if kind in ("image_file", "image_url"):
        raise refusal(f"{index}.{kind}", IMAGES_REFUSED, UNSUPPORTED)
    if kind != "text":
        raise refusal(f"{index}.type", "A content part's type is text.")
    text = part.get("text")
    if isinstance(text, dict):
        text = text.get("value")
    if not isinstance(text, str):
        raise refusal(f"{index}.text", "Expected a string.")
    return text


class ContentField(JSONValueField):
    """A message's content: a string, or a list of text parts (images are refused)."""

    max_length = 256_000

    def to_internal_value(self, data: Any) -> list[dict[str, Any]]:
        if isinstance(data, str):
            texts = [data]
        elif isinstance(data, list) and data:
            texts = [_content_part(index, part) for index, part in enumerate(data)]
        else:
            raise serializers.ValidationError(
                "A string or a non-empty list of content parts.", code="invalid"
            )
        if sum(len(text) for text in texts) > self.max_length:
            raise serializers.ValidationError(
                f"At most {self.max_length} characters.", code="max_length"
            )
        return [{"type": "text", "text": {"value": text, "annotations": []}} for text in texts]


class AttachmentsField(OptionalJSONField):
    """Files attached to a message for file_search: [{"file_id", "tools": [...]}]."""

    def to_internal_value(self, data: Any) -> list[dict[str, Any]]:
        if not isinstance(data, list) or len(data) > 10:
            raise serializers.ValidationError("A list of at most 10 attachments.", code="invalid")
        attachments = []
        for index, raw in enumerate(data):
            item = _object(raw, str(index))
            if not isinstance(item.get("file_id"), str):
                raise refusal(f"{index}.file_id", "A file id.")
            tools = item.get("tools") or [{"type": "file_search"}]
            for number, tool in enumerate(tools if isinstance(tools, list) else [None]):
                kind = tool.get("type") if isinstance(tool, dict) else None
                if kind == "code_interpreter":
                    refused = f"{index}.tools.{number}"
                    raise refusal(refused, CODE_INTERPRETER_REFUSED, UNSUPPORTED)
                if kind != "file_search":
                    raise refusal(f"{index}.tools.{number}.type", "file_search.")
            attachments.append({"file_id": item["file_id"], "tools": [{"type": "file_search"}]})
        return attachments


class NoV1FileIds(OptionalJSONField):
    """`file_ids` of Assistants v1: always refused."""

    def to_internal_value(self, data: Any) -> Any:
        raise serializers.ValidationError(FILE_IDS_REFUSED, code="unsupported_parameter")
