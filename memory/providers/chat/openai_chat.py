"""OpenAI Chat Completions (and OpenAI-compatible servers: vLLM, Ollama, LiteLLM…) for runs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import openai

from memory.providers.chat.base import (
    CHAT_TIMEOUT_SECONDS,
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
    estimate_tokens,
)
from memory.providers.chat.events import error_message, server_sent_events, shaped
from memory.providers.llm import is_reasoning_model, shared_ssl_context

_FINISH: dict[str, Finish] = {"length": "length", "tool_calls": "tool_calls"}


class OpenAIClientMixin(VendorChat[openai.AsyncOpenAI]):
    """An AsyncOpenAI client per event loop, and SDK errors as ChatError."""

    vendor = "openai"
    key_variable = "OPENAI_API_KEY"
    # create()'s required parameters other than model, sent as a stub (see untransformed).
    required: ClassVar[dict[str, Any]] = {}

    def untransformed(self, body: dict[str, Any]) -> dict[str, Any]:
        """create()'s arguments that send body as it is, not as the SDK would rewrite it.

        The openai SDK rewrites typed parameters by walking their type hints over every value
        (for aliases, dates and files): ~1.5 ms for a run's system prompt and a few messages,
        up to 4 ms on a busy worker, before the request leaves. The bodies built here are plain
        JSON, which that rewrite leaves as it is (tests/providers/test_chat.py checks it), so
        all but `model` and `stream` go in `extra_body`, which the SDK sends as given and which
        takes precedence over a typed parameter (a `required` stub) on the same key.
        """
        typed = ("model", "stream")
        arguments = {**self.required, **{name: body[name] for name in typed if name in body}}
        arguments["extra_body"] = {name: value for name, value in body.items() if name not in typed}
        return arguments

    def _new_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key=self.settings.api_key,
            base_url=self.settings.base_url,
            timeout=CHAT_TIMEOUT_SECONDS,
            max_retries=self.max_retries,
            http_client=openai.DefaultAsyncHttpxClient(verify=shared_ssl_context()),
        )

    @staticmethod
    async def _events(response: Any) -> AsyncIterator[tuple[str | None, dict[str, Any]]]:
        """A streamed answer's events as plain JSON (memory.providers.chat.events); an event
        carrying an `error` raises openai.APIError, as the SDK's own stream does."""
        async for name, data in server_sent_events(
            response,
            timeout_error=openai.APITimeoutError,
            connection_error=openai.APIConnectionError,
        ):
            if not isinstance(data, dict):
                raise ChatError(f"unexpected streamed event: {str(data)[:100]}")
            if data.get("error"):
                message = error_message(data["error"], "An error occurred during streaming")
                raise openai.APIError(message, response.http_request, body=data["error"])
            yield name, data


def chat_messages(system: str, messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """The conversation in Chat Completions form."""
    converted: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for message in messages:
        if message.role == "tool":
            converted.append(
                {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
            )
        elif message.role == "assistant" and message.tool_calls:
            converted.append(
                {
                    "role": "assistant",
                    "content": message.content or None,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": call.arguments or "{}"},
                        }
                        for call in message.tool_calls
                    ],
                }
            )
        else:
            converted.append({"role": message.role, "content": message.content})
    return converted


class OpenAIChatCompletions(OpenAIClientMixin):
    """Runs through POST /chat/completions."""

    required: ClassVar[dict[str, Any]] = {"messages": []}

    def request(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """The request body for this run's model call."""
        body: dict[str, Any] = {
            "model": request.model,
            "messages": chat_messages(request.system, request.messages),
        }
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters or {"type": "object", "properties": {}},
                    },
                }
                for tool in request.tools
            ]
            body["parallel_tool_calls"] = request.parallel_tool_calls
            body["tool_choice"] = (
                {"type": "function", "function": {"name": request.forced_tool}}
                if request.forced_tool
                else request.tool_choice
            )
        body.update(self._sampling(request))
        if request.response_format:
            body["response_format"] = request.response_format
        if stream:
            body["stream"] = True
            if not self.settings.base_url:  # compatible servers may refuse stream_options
                body["stream_options"] = {"include_usage": True}
        return body

    def _sampling(self, request: ChatRequest) -> dict[str, Any]:
        if is_reasoning_model(request.model):
            sampling: dict[str, Any] = {}
            if request.max_tokens:
                sampling["max_completion_tokens"] = request.max_tokens
            if request.reasoning_effort:
                sampling["reasoning_effort"] = request.reasoning_effort
            return sampling
        sampling = {"max_tokens": request.max_tokens or None}
        if request.temperature is not None:
            sampling["temperature"] = request.temperature
        if request.top_p is not None:
            sampling["top_p"] = request.top_p
        return {name: value for name, value in sampling.items() if value is not None}

    async def complete(self, request: ChatRequest) -> ChatResult:
        """The model's whole answer."""
        try:
            completion = await self._client().chat.completions.create(
                **self.untransformed(self.request(request, stream=False))
            )
            choice = completion.choices[0]
            message = choice.message
            calls = [
                ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments)
                for call in message.tool_calls or []
                if getattr(call, "function", None) is not None
            ]
            text = message.content or ""
        except (openai.OpenAIError, json.JSONDecodeError) as exc:
            raise self._error(exc, request.model) from exc
        except (AttributeError, IndexError, TypeError) as exc:
            raise ChatError(f"{self.name}: unexpected chat completion shape") from exc
        finish = _FINISH.get(choice.finish_reason or "", "tool_calls" if calls else "stop")
        usage = completion.usage
        return ChatResult(
            text=text,
            tool_calls=calls,
            finish=finish,
            usage=Usage(usage.prompt_tokens, usage.completion_tokens)
            if usage
            else Usage(estimate_tokens(str(request.messages)), estimate_tokens(text)),
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        """The model's answer as it is produced, ending with Finished."""
        assembler = StreamAssembler()
        started: set[int] = set()
        body = self.request(request, stream=True)
        try:
            streamed = self._client().chat.completions.with_streaming_response.create(
                **self.untransformed(body)
            )
            async with streamed as response:  # closed even when the run stops reading
                async for _, chunk in self._events(response):
                    with shaped(self.name, "chat completion chunk"):
                        events = _chunk_events(chunk, started, assembler)
                    for event in events:
                        yield assembler.add(event)
        except (openai.OpenAIError, json.JSONDecodeError) as exc:
            raise self._error(exc, request.model) from exc
        yield Finished(assembler.result(len(str(request.messages))))


def _chunk_events(
    chunk: dict[str, Any], started: set[int], assembler: StreamAssembler
) -> list[ChatEvent]:
    """The events one streamed chunk carries (its usage goes to the assembler)."""
    usage = chunk.get("usage")
    if usage:
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        assembler.usage = Usage(int(prompt or 0), int(completion or 0))
    return [
        event
        for choice in chunk.get("choices") or []
        for event in _choice_events(choice, started, assembler)
    ]


def _choice_events(
    choice: dict[str, Any], started: set[int], assembler: StreamAssembler
) -> list[ChatEvent]:
    """The events one streamed choice chunk carries."""
    events: list[ChatEvent] = []
    delta = choice.get("delta") or {}
    if delta.get("content"):
        events.append(TextDelta(delta["content"]))
    for call in delta.get("tool_calls") or []:
        index = call.get("index") or 0
        function = call.get("function") or {}
        if index not in started:
            started.add(index)
            call_id = call.get("id") or f"call_{index}"
            events.append(ToolCallStarted(index, call_id, function.get("name") or ""))
        if function.get("arguments"):
            events.append(ToolArgumentsDelta(index, function["arguments"]))
    if choice.get("finish_reason"):
        assembler.finish = _FINISH.get(choice["finish_reason"], "stop")
    return events
