"""Anthropic Messages API for runs: tool_use blocks in, tool_result blocks back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic

from memory.providers.chat.base import (
    CHAT_TIMEOUT_SECONDS,
    DEFAULT_MAX_TOKENS,
    ChatError,
    ChatEvent,
    ChatMessage,
    ChatRequest,
    ChatResult,
    Finish,
    Finished,
    StreamAssembler,
    TextDelta,
    ToolArgumentsDelta,
    ToolCall,
    ToolCallStarted,
    Usage,
    VendorChat,
)
from memory.providers.chat.events import error_message, server_sent_events, shaped
from memory.providers.llm import shared_ssl_context

JSON_ONLY = "Answer with one JSON object and nothing else."
_FINISH: dict[str, Finish] = {"max_tokens": "length", "tool_use": "tool_calls"}
# Messages must open with the user; a thread whose first message is the assistant's gets this.
OPENING = "(The conversation so far follows.)"


def _blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [
            {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": message.content or "(no output)",
            }
        ]
    blocks: list[dict[str, Any]] = []
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    for call in message.tool_calls:
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError:
            arguments = {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": arguments if isinstance(arguments, dict) else {},
            }
        )
    return blocks


def anthropic_messages(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """The conversation as Messages turns: strictly alternating, tool results as user turns."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if turns and turns[0]["role"] == "assistant":
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": OPENING}]})
    return turns


class AnthropicMessages(VendorChat[anthropic.AsyncAnthropic]):
    """Runs through POST /v1/messages."""

    vendor = "anthropic"
    key_variable = "ANTHROPIC_API_KEY"

    def _new_client(self) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            api_key=self.settings.api_key,
            base_url=self.settings.base_url,
            timeout=CHAT_TIMEOUT_SECONDS,
            max_retries=self.max_retries,
            http_client=anthropic.DefaultAsyncHttpxClient(verify=shared_ssl_context()),
        )

    def request(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """The request body (temperature and top_p are not parameters of the installed API)."""
        system = request.system
        body: dict[str, Any] = {
            "model": request.model,
            "messages": anthropic_messages(request.messages),
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        }
        if request.tools:
            body["tools"] = [
                {
                    "name": tool.name,
                    "description": tool.description,
                    "input_schema": tool.parameters or {"type": "object", "properties": {}},
                }
                for tool in request.tools
            ]
            body["tool_choice"] = self._tool_choice(request)
        format_ = request.response_format or {}
        if format_.get("type") == "json_schema":
            schema = (format_.get("json_schema") or {}).get("schema") or {"type": "object"}
            body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        elif format_.get("type") == "json_object":
            system = f"{system}\n\n{JSON_ONLY}" if system else JSON_ONLY
        if system:
            body["system"] = system
        if stream:
            body["stream"] = True
        return body

    @staticmethod
    def _tool_choice(request: ChatRequest) -> dict[str, Any]:
        if request.tool_choice == "none":
            return {"type": "none"}
        choice: dict[str, Any]
        if request.forced_tool:
            choice = {"type": "tool", "name": request.forced_tool}
        else:
            choice = {"type": "any" if request.tool_choice == "required" else "auto"}
        choice["disable_parallel_tool_use"] = not request.parallel_tool_calls
        return choice

    async def complete(self, request: ChatRequest) -> ChatResult:
        """The model's whole answer."""
        try:
            message = await self._client().messages.create(**self.request(request, stream=False))
            texts = [block.text for block in message.content if block.type == "text"]
            calls = [
                ToolCall(id=block.id, name=block.name, arguments=json.dumps(block.input))
                for block in message.content
                if block.type == "tool_use"
            ]
        except (anthropic.AnthropicError, json.JSONDecodeError) as exc:
            raise self._error(exc, request.model) from exc
        except (AttributeError, TypeError) as exc:
            raise ChatError(f"{self.name}: unexpected message shape") from exc
        finish = _FINISH.get(message.stop_reason or "", "stop")
        usage = message.usage
        return ChatResult(
            text="".join(texts),
            tool_calls=calls,
            finish=finish,
            usage=Usage(usage.input_tokens, usage.output_tokens) if usage else Usage(),
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        """The model's answer as it is produced, ending with Finished (events read as plain
        JSON: memory.providers.chat.events)."""
        stream = _MessageStream(StreamAssembler())
        body = self.request(request, stream=True)
        try:
            streamed = self._client().messages.with_streaming_response.create(**body)
            async with streamed as response:  # closed even when the run stops reading
                async for name, event in server_sent_events(
                    response,
                    timeout_error=anthropic.APITimeoutError,
                    connection_error=anthropic.APIConnectionError,
                ):
                    with shaped(self.name, "message event"):
                        kind = event.get("type") or name
                        events = stream.take(kind, event)
                    if kind == "error":
                        error = event.get("error")
                        message = error_message(error, "An error occurred during streaming")
                        raise anthropic.APIError(message, response.http_request, body=error)
                    for chat_event in events:
                        yield stream.assembler.add(chat_event)
        except (anthropic.AnthropicError, json.JSONDecodeError) as exc:
            raise self._error(exc, request.model) from exc
        stream.assembler.usage = Usage(stream.prompt_tokens, stream.completion_tokens)
        yield Finished(stream.assembler.result())


class _MessageStream:
    """What a streamed message has said so far: its tool-use blocks and its token counts."""

    def __init__(self, assembler: StreamAssembler) -> None:
        self.assembler = assembler
        self.blocks: dict[int, int] = {}  # content block index -> tool call index
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def take(self, kind: str | None, event: dict[str, Any]) -> list[ChatEvent]:
        """The run's events for one of the message's (usage may be missing on compatible
        servers: it is only counted)."""
        if kind == "message_start":
            usage = (event.get("message") or {}).get("usage") or {}
            self.prompt_tokens = int(usage.get("input_tokens") or 0)
        elif kind == "content_block_start":
            block = event["content_block"]
            if block.get("type") == "tool_use":
                index = self.blocks[event["index"]] = len(self.blocks)
                return [ToolCallStarted(index, block["id"], block["name"])]
        elif kind == "content_block_delta":
            delta = event["delta"]
            if delta.get("type") == "text_delta":
                return [TextDelta(delta["text"])]
            if delta.get("type") == "input_json_delta" and event["index"] in self.blocks:
                return [ToolArgumentsDelta(self.blocks[event["index"]], delta["partial_json"])]
        elif kind == "message_delta":
            stop = (event.get("delta") or {}).get("stop_reason") or ""
            self.assembler.finish = _FINISH.get(stop, "stop")
            usage = event.get("usage") or {}
            self.completion_tokens = int(usage.get("output_tokens") or 0)
        return []
