"""Chat with function tools and streaming, behind one interface (Django-free).

The judge's `memory.providers.llm` turns one prompt into text; an Assistants run needs more: a
whole conversation, function tools, and the answer streamed as it is produced. The vendor,
model, key and base URL are resolved exactly as for the judge (`llm_settings`: the project's
llm_provider, else ENGRAMIA_LLM and its environment).
"""

from __future__ import annotations

from memory.providers.chat.anthropic_messages import AnthropicMessages
from memory.providers.chat.base import (
    ChatError,
    ChatEvent,
    ChatMessage,
    ChatNotConfigured,
    ChatProvider,
    ChatRequest,
    ChatResult,
    Finished,
    TextDelta,
    ToolArgumentsDelta,
    ToolCall,
    ToolCallStarted,
    ToolSpec,
    Usage,
    close_clients,
    estimate_tokens,
)
from memory.providers.chat.openai_chat import OpenAIChatCompletions
from memory.providers.chat.openai_responses import OpenAIResponses
from memory.providers.llm import LLMNotConfigured, llm_settings


def get_chat(kind: str | None = None, *, max_retries: int = 2) -> ChatProvider:
    """The chat provider of vendor `kind` (or ENGRAMIA_LLM); ChatNotConfigured when there is none.

    The model is chosen per call (`ChatRequest.model`): an Assistants run names its own.
    """
    try:
        settings = llm_settings(kind)
    except LLMNotConfigured as exc:
        raise ChatNotConfigured(str(exc)) from exc
    if settings.vendor == "anthropic":
        return AnthropicMessages(settings, max_retries=max_retries)
    if settings.openai_api == "responses":
        return OpenAIResponses(settings, max_retries=max_retries)
    return OpenAIChatCompletions(settings, max_retries=max_retries)


__all__ = [
    "AnthropicMessages",
    "ChatError",
    "ChatEvent",
    "ChatMessage",
    "ChatNotConfigured",
    "ChatProvider",
    "ChatRequest",
    "ChatResult",
    "Finished",
    "OpenAIChatCompletions",
    "OpenAIResponses",
    "TextDelta",
    "ToolArgumentsDelta",
    "ToolCall",
    "ToolCallStarted",
    "ToolSpec",
    "Usage",
    "close_clients",
    "estimate_tokens",
    "get_chat",
]
