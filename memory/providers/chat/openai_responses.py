"""OpenAI Responses API (ENGRAMIA_OPENAI_API=responses) for runs: stateless (`store: false`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai

from memory.providers.chat.base import (
    ChatError,
    ChatEvent,
    ChatMessage,
    ChatRequest,
    ChatResult,
    Finished,
    StreamAssembler,
    TextDelta,
    ToolArgumentsDelta,
    ToolCall,
    ToolCallStarted,
    Usage,
)
from memory.providers.chat.events import error_message, shaped
from memory.providers.chat.openai_chat import OpenAIClientMixin
from memory.providers.llm import is_reasoning_model


def response_input(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """The conversation as Responses input items."""
    items: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message.tool_call_id,
                    "output": message.content,
                }
            )
            continue
        if message.content or not message.tool_calls:
            items.append({"role": message.role, "content": message.content})
        for call in message.tool_calls:
            items.append(
                {
                    "type": "function_call",
                    "call_id": call.id,
                    "name": call.name,
                    "arguments": call.arguments or "{}",
                }
            )
    return items


def _text_format(response_format: dict[str, Any]) -> dict[str, Any]:
    """Chat's response_format in the Responses `text.format` form."""
    if response_format.get("type") == "json_schema":
        schema = dict(response_format.get("json_schema") or {})
        return {"type": "json_schema", **schema}
    return {"type": str(response_format.get("type", "text"))}


class OpenAIResponses(OpenAIClientMixin):
    """Runs through POST /responses."""

    def request(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """The request body for this run's model call."""
        body: dict[str, Any] = {
            "model": request.model,
            "instructions": request.system,
            "input": response_input(request.messages),
            "store": False,
        }
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters or {"type": "object", "properties": {}},
                    "strict": False,
                }
                for tool in request.tools
            ]
            body["parallel_tool_calls"] = request.parallel_tool_calls
            body["tool_choice"] = (
                {"type": "function", "name": request.forced_tool}
                if request.forced_tool
                else request.tool_choice
            )
        if request.max_tokens:
            body["max_output_tokens"] = request.max_tokens
        if is_reasoning_model(request.model):
            if request.reasoning_effort:
                body["reasoning"] = {"effort": request.reasoning_effort}
        else:
            if request.temperature is not None:
                body["temperature"] = request.temperature
            if request.top_p is not None:
                body["top_p"] = request.top_p
        if request.response_format:
            body["text"] = {"format": _text_format(request.response_format)}
        if stream:
            body["stream"] = True
        return body

    async def complete(self, request: ChatRequest) -> ChatResult:
        """The model's whole answer."""
        try:
            response = await self._client().responses.create(
                **self.untransformed(self.request(request, stream=False))
            )
        except (openai.OpenAIError, json.JSONDecodeError) as exc:
            raise self._error(exc, request.model) from exc
        # As JSON, read as a streamed answer's last event is; items this SDK does not know
        # are kept as they came, without a warning each.
        with shaped(self.name, "response"):
            return _result(response.model_dump(warnings=False))

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        """The model's answer as it is produced, ending with Finished."""
        stream = _ResponseStream(StreamAssembler())
        body = self.request(request, stream=True)
        try:
            streamed = self._client().responses.with_streaming_response.create(
                **self.untransformed(body)
            )
            async with streamed as response:  # closed even when the run stops reading
                async for name, event in self._events(response):
                    with shaped(self.name, "response event"):
                        events = stream.take(event.get("type") or name or "", event)
                    if stream.failure is not None:
                        raise ChatError(f"{self.name}: {stream.failure}")
                    for chat_event in events:
                        yield stream.assembler.add(chat_event)
        except (openai.OpenAIError, json.JSONDecodeError) as exc:
            raise self._error(exc, request.model) from exc
        if stream.final is None:
            raise ChatError(f"{self.name}: the response stream ended before it completed")
        with shaped(self.name, "response"):
            result = _result(stream.final)
        yield Finished(result)


class _ResponseStream:
    """What a streamed response has said so far: its tool calls, its end or its failure."""

    def __init__(self, assembler: StreamAssembler) -> None:
        self.assembler = assembler
        self.calls: dict[int, int] = {}  # output_index -> tool call index
        self.final: dict[str, Any] | None = None
        self.failure: str | None = None

    def take(self, kind: str, event: dict[str, Any]) -> list[ChatEvent]:
        """The run's events for one of the response's."""
        if self.final is not None:  # nothing counts after the response's end
            return []
        if kind == "response.output_text.delta":
            return [TextDelta(event["delta"])]
        if kind == "response.output_item.added":
            item = event["item"]
            if item.get("type") != "function_call":
                return []
            index = self.calls[event["output_index"]] = len(self.calls)
            return [ToolCallStarted(index, item["call_id"], item["name"])]
        if kind == "response.function_call_arguments.delta":
            call = self.calls.get(event["output_index"])
            return [] if call is None else [ToolArgumentsDelta(call, event["delta"])]
        if kind in ("response.completed", "response.incomplete"):
            self.final = event["response"]
        elif kind in ("response.failed", "error"):
            self.failure = _failure(event)
        return []


def _result(response: dict[str, Any]) -> ChatResult:
    """A whole Responses answer (as JSON) as a ChatResult."""
    texts: list[str] = []
    calls: list[ToolCall] = []
    for item in response.get("output") or []:
        if item["type"] == "message":
            texts.extend(part["text"] for part in item["content"] if part["type"] == "output_text")
        elif item["type"] == "function_call":
            calls.append(
                ToolCall(id=item["call_id"], name=item["name"], arguments=item["arguments"])
            )
    details = response.get("incomplete_details") or {}
    if response.get("status") == "incomplete" and details.get("reason") == "max_output_tokens":
        finish = "length"
    else:
        finish = "tool_calls" if calls else "stop"
    usage = response.get("usage")
    return ChatResult(
        text="".join(texts),
        tool_calls=calls,
        finish=finish,  # type: ignore[arg-type]
        usage=Usage(int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0))
        if usage
        else Usage(),
    )


def _failure(event: dict[str, Any]) -> str:
    """The reason a streamed response failed."""
    error = (event.get("response") or {}).get("error") or event
    return error_message(error, "the response failed")
