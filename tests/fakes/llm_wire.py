"""Bodies and server-sent events of the three vendor wire formats the fake LLM server speaks.

Whole answers (`whole_body`) and streamed ones (`stream_events`: (event name or None, data)
pairs) for OpenAI Chat Completions, OpenAI Responses and Anthropic Messages, with text, tool
calls and the two ways an answer stops early (the token budget).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

CHAT_COMPLETIONS_PATH = "/v1/chat/completions"
RESPONSES_PATH = "/v1/responses"
MESSAGES_PATH = "/v1/messages"


@dataclass(frozen=True)
class Answer:
    """What the fake model says: text pieces, tool calls (name, JSON arguments), how it ends."""

    pieces: list[str]
    tool_calls: list[tuple[str, str]]
    finish: str  # "stop" or "length"
    number: int
    model: str

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def call_id(self, index: int) -> str:
        return f"call_fake_{self.number}_{index}"


def whole_body(path: str, answer: Answer) -> dict[str, Any]:
    """The non-streamed response body for path."""
    if path == CHAT_COMPLETIONS_PATH:
        return _chat_completion(answer)
    if path == RESPONSES_PATH:
        return _response(answer, complete=True)
    return _message(answer)


def stream_events(path: str, answer: Answer, body: dict[str, Any]) -> Iterator[tuple[Any, Any]]:
    """The streamed answer: (SSE event name or None, JSON data or the raw string "[DONE]")."""
    if path == CHAT_COMPLETIONS_PATH:
        yield from _chat_chunks(answer, body)
    elif path == RESPONSES_PATH:
        yield from _response_events(answer)
    else:
        yield from _message_events(answer)


# -- OpenAI Chat Completions -------------------------------------------------------------------


def _chat_completion(answer: Answer) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text or None, "refusal": None}
    if answer.tool_calls:
        message["tool_calls"] = [
            {"id": answer.call_id(i), "type": "function", "function": {"name": n, "arguments": a}}
            for i, (n, a) in enumerate(answer.tool_calls)
        ]
    return {
        "id": f"chatcmpl-fake-{answer.number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": answer.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": _chat_finish(answer),
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def _chat_finish(answer: Answer) -> str:
    if answer.finish == "length":
        return "length"
    return "tool_calls" if answer.tool_calls else "stop"


def _chunk(answer: Answer, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-fake-{answer.number}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": answer.model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


def _chat_chunks(answer: Answer, body: dict[str, Any]) -> Iterator[tuple[Any, Any]]:
    yield None, _chunk(answer, {"role": "assistant", "content": ""})
    for piece in answer.pieces:
        yield None, _chunk(answer, {"content": piece})
    for index, (name, arguments) in enumerate(answer.tool_calls):
        call = {"index": index, "id": answer.call_id(index), "type": "function"}
        yield None, _chunk(answer, {"tool_calls": [{**call, "function": {"name": name}}]})
        for part in _halves(arguments):
            yield (
                None,
                _chunk(answer, {"tool_calls": [{"index": index, "function": {"arguments": part}}]}),
            )
    yield None, _chunk(answer, {}, _chat_finish(answer))
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        yield None, {**_chunk(answer, {}), "choices": [], "usage": usage}
    yield None, "[DONE]"


def _halves(text: str) -> list[str]:
    """A string in two pieces (arguments arrive in fragments), or whole when short."""
    middle = len(text) // 2
    return [text[:middle], text[middle:]] if middle else [text]


# -- OpenAI Responses --------------------------------------------------------------------------


def _response_items(answer: Answer) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if answer.pieces:
        items.append(
            {
                "type": "message",
                "id": f"msg_fake_{answer.number}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": answer.text, "annotations": []}],
            }
        )
    for index, (name, arguments) in enumerate(answer.tool_calls):
        items.append(
            {
                "type": "function_call",
                "id": f"fc_fake_{answer.number}_{index}",
                "call_id": answer.call_id(index),
                "name": name,
                "arguments": arguments,
                "status": "completed",
            }
        )
    return items


def _response(answer: Answer, *, complete: bool) -> dict[str, Any]:
    incomplete = answer.finish == "length"
    status = ("incomplete" if incomplete else "completed") if complete else "in_progress"
    return {
        "id": f"resp_fake_{answer.number}",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete and complete else None,
        "model": answer.model,
        "output": _response_items(answer) if complete else [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 10,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 5,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 15,
        },
    }


def _response_events(answer: Answer) -> Iterator[tuple[Any, Any]]:
    sequence = iter(range(1_000_000))

    def event(kind: str, **data: Any) -> tuple[str, dict[str, Any]]:
        return kind, {"type": kind, "sequence_number": next(sequence), **data}

    yield event("response.created", response=_response(answer, complete=False))
    items = _response_items(answer)
    for output_index, item in enumerate(items):
        if item["type"] == "message":
            started = {**item, "status": "in_progress", "content": []}
            yield event("response.output_item.added", output_index=output_index, item=started)
            for piece in answer.pieces:
                yield event(
                    "response.output_text.delta",
                    item_id=item["id"],
                    output_index=output_index,
                    content_index=0,
                    delta=piece,
                    logprobs=[],
                )
        else:
            started = {**item, "status": "in_progress", "arguments": ""}
            yield event("response.output_item.added", output_index=output_index, item=started)
            for part in _halves(item["arguments"]):
                yield event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=output_index,
                    delta=part,
                )
        yield event("response.output_item.done", output_index=output_index, item=item)
    final = _response(answer, complete=True)
    kind = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
    yield event(kind, response=final)


# -- Anthropic Messages ------------------------------------------------------------------------


def _message(answer: Answer) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": answer.text}] if answer.pieces else []
    for index, (name, arguments) in enumerate(answer.tool_calls):
        content.append(
            {
                "type": "tool_use",
                "id": answer.call_id(index),
                "name": name,
                "input": json.loads(arguments or "{}"),
            }
        )
    return {
        "id": f"msg_fake_{answer.number}",
        "type": "message",
        "role": "assistant",
        "model": answer.model,
        "content": content,
        "stop_reason": _message_stop(answer),
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }


def _message_stop(answer: Answer) -> str:
    if answer.finish == "length":
        return "max_tokens"
    return "tool_use" if answer.tool_calls else "end_turn"


def _message_events(answer: Answer) -> Iterator[tuple[Any, Any]]:
    started = {**_message(answer), "content": [], "stop_reason": None}
    started["usage"] = {"input_tokens": 10, "output_tokens": 1}
    yield "message_start", {"type": "message_start", "message": started}
    index = 0
    if answer.pieces:
        block = {"type": "text", "text": ""}
        yield (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        )
        for piece in answer.pieces:
            delta = {"type": "text_delta", "text": piece}
            yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": 0}
        index = 1
    for number, (name, arguments) in enumerate(answer.tool_calls, start=index):
        block = {
            "type": "tool_use",
            "id": answer.call_id(number - index),
            "name": name,
            "input": {},
        }
        yield (
            "content_block_start",
            {"type": "content_block_start", "index": number, "content_block": block},
        )
        for part in _halves(arguments):
            delta = {"type": "input_json_delta", "partial_json": part}
            yield (
                "content_block_delta",
                {"type": "content_block_delta", "index": number, "delta": delta},
            )
        yield "content_block_stop", {"type": "content_block_stop", "index": number}
    delta = {"stop_reason": _message_stop(answer), "stop_sequence": None}
    yield "message_delta", {"type": "message_delta", "delta": delta, "usage": {"output_tokens": 5}}
    yield "message_stop", {"type": "message_stop"}
