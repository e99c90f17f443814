"""What a conversation with an LLM looks like, whichever vendor answers it (Django-free).

A run sends a `ChatRequest` (system text, the conversation, function tools and sampling) and
gets back either a `ChatResult` (`complete`) or the same result as a stream of events ending in
`Finished` (`stream`). Vendors differ in wire format only; each module of this package maps
these types to one API: OpenAI Chat Completions, OpenAI Responses, Anthropic Messages.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

from memory.providers.llm import LLMError, LLMNotConfigured, LLMSettings, upstream_error

Finish = Literal["stop", "length", "tool_calls"]
# A run's answer is usually short, but the token budget must leave room for long ones.
DEFAULT_MAX_TOKENS = 4096
CHAT_TIMEOUT_SECONDS = 120.0


class ChatError(LLMError):
    """The LLM a run talks to failed, after the client's retries."""

    prefix = "The LLM failed"


class ChatNotConfigured(ChatError, LLMNotConfigured):
    """No LLM is configured for the project, so runs cannot be executed."""

    prefix = "No LLM is configured"


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call: name, description, JSON Schema of its arguments."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolCall:
    """One call the model made: the id to answer it by, the function, its JSON arguments."""

    id: str
    name: str
    arguments: str = ""


@dataclass(frozen=True)
class ChatMessage:
    """One turn: user or assistant text, the assistant's tool calls, or a tool's output."""

    role: Literal["user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""


@dataclass(frozen=True)
class ChatRequest:
    """Everything one model call needs."""

    model: str
    system: str
    messages: list[ChatMessage]
    tools: list[ToolSpec] = field(default_factory=list)
    # "auto", "none", "required", or the name of the one function the model must call.
    tool_choice: str = "auto"
    forced_tool: str | None = None
    parallel_tool_calls: bool = True
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    # {"type": "json_object"} or {"type": "json_schema", "json_schema": {...}}; None: text.
    response_format: dict[str, Any] | None = None
    reasoning_effort: str | None = None


@dataclass(frozen=True)
class Usage:
    """Tokens the call consumed."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ChatResult:
    """The model's answer: text, tool calls, why it stopped, and what it cost."""

    text: str
    tool_calls: list[ToolCall]
    finish: Finish
    usage: Usage


@dataclass(frozen=True)
class TextDelta:
    """More answer text."""

    text: str


@dataclass(frozen=True)
class ToolCallStarted:
    """The model began a tool call (index: its position among this answer's calls)."""

    index: int
    id: str
    name: str


@dataclass(frozen=True)
class ToolArgumentsDelta:
    """More JSON of a tool call's arguments."""

    index: int
    text: str


@dataclass(frozen=True)
class Finished:
    """The answer is complete."""

    result: ChatResult


ChatEvent = TextDelta | ToolCallStarted | ToolArgumentsDelta | Finished


class ChatProvider(Protocol):
    """A vendor API that holds a conversation with function tools, whole or streamed."""

    name: str

    async def complete(self, request: ChatRequest) -> ChatResult:
        """The model's whole answer."""
        ...

    def stream(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        """The model's answer as it is produced, ending with `Finished`."""
        ...


def estimate_tokens(text: str) -> int:
    """A rough token count (about four characters a token) where the vendor reports none."""
    return max(1, len(text) // 4) if text else 0


class StreamAssembler:
    """Collects streamed deltas into the `ChatResult` the same answer would have had whole."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls: dict[int, list[str]] = {}  # index -> [id, name, arguments...]
        self.finish: Finish | None = None
        self.usage: Usage | None = None

    def add(self, event: ChatEvent) -> ChatEvent:
        """Record one event and return it."""
        if isinstance(event, TextDelta):
            self.text.append(event.text)
        elif isinstance(event, ToolCallStarted):
            self.calls[event.index] = [event.id, event.name]
        elif isinstance(event, ToolArgumentsDelta) and event.index in self.calls:
            self.calls[event.index].append(event.text)
        return event

    def result(self, prompt_chars: int = 0) -> ChatResult:
        """The whole answer."""
        calls = [
            ToolCall(id=parts[0], name=parts[1], arguments="".join(parts[2:]))
            for _, parts in sorted(self.calls.items())
        ]
        text = "".join(self.text)
        finish: Finish = self.finish or ("tool_calls" if calls else "stop")
        usage = self.usage or Usage(estimate_tokens("x" * prompt_chars), estimate_tokens(text))
        return ChatResult(text=text, tool_calls=calls, finish=finish, usage=usage)


# Clients live as long as the event loop they were made on: a server's loop keeps its
# connections to the vendor between runs; a job's short-lived loop closes them (close_clients).
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], Any]] = (
    weakref.WeakKeyDictionary()
)


def loop_client(key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
    """The async client for key on the running event loop, made on first use."""
    loop = asyncio.get_running_loop()
    clients = _clients.setdefault(loop, {})
    if key not in clients:
        clients[key] = make()
    return clients[key]


async def close_clients() -> None:
    """Close the clients of the running event loop (call before a short-lived loop ends)."""
    clients = _clients.pop(asyncio.get_running_loop(), {})
    for client in clients.values():
        await client.close()


ClientT = TypeVar("ClientT")


class VendorChat(Generic[ClientT]):
    """A vendor SDK's async client per event loop, and the SDK's errors as ChatError."""

    vendor: ClassVar[str]
    # The environment variable an authentication failure tells the operator to check.
    key_variable: ClassVar[str]

    def __init__(self, settings: LLMSettings, *, max_retries: int = 2) -> None:
        self.settings = settings
        self.model = settings.model
        self.name = f"{self.vendor}:{settings.model}"
        self.max_retries = max_retries

    def _new_client(self) -> ClientT:
        raise NotImplementedError

    def _client(self) -> ClientT:
        settings = self.settings
        key = (self.vendor, settings.base_url, settings.api_key, self.max_retries)
        client: ClientT = loop_client(key, self._new_client)
        return client

    def _error(self, exc: Exception, model: str) -> ChatError:
        error = upstream_error(
            f"{self.vendor}:{model}",
            self.max_retries,
            exc,
            key_variable=self.key_variable,
            error_class=ChatError,
        )
        return error if isinstance(error, ChatError) else ChatError(str(error))
