"""LLM providers behind one small interface (Django-free): OpenAI-compatible and Anthropic."""

from __future__ import annotations

import functools
import json
import os
import re
import ssl
from dataclasses import dataclass
from typing import Any, Protocol, cast, runtime_checkable

import anthropic
import certifi
import openai

from engramia_site.errors import DependencyUnavailable, NotConfigured

__all__ = [
    "DEFAULT_MODELS",
    "AnthropicProvider",
    "LLMError",
    "LLMNotConfigured",
    "LLMProvider",
    "LLMSettings",
    "OpenAIChatProvider",
    "OpenAIResponsesProvider",
    "get_llm",
    "llm_settings",
    "shared_ssl_context",
    "upstream_error",
]

DEFAULT_MODELS = {"openai": "gpt-4.1-mini", "anthropic": "claude-haiku-4-5"}
OPENAI_API_STYLES = ("chat", "responses")
# Reasoning models spend output tokens on hidden reasoning before any visible text.
REASONING_TOKEN_ALLOWANCE = 2048
_REASONING_MODEL = re.compile(r"^(o\d|gpt-[5-9])", re.IGNORECASE)

_HOW_TO_CONFIGURE = (
    "set ENGRAMIA_LLM=openai with OPENAI_API_KEY (and OPENAI_BASE_URL for an OpenAI-compatible "
    "server such as vLLM or Ollama), or ENGRAMIA_LLM=anthropic with ANTHROPIC_API_KEY; "
    "ENGRAMIA_LLM_MODEL picks the model"
)


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One verified TLS context per process: loading the CA bundle costs ~25-100 ms a client."""
    # certifi's bundle, as httpx (and so the vendors' SDKs) verifies by default.
    return ssl.create_default_context(cafile=certifi.where())


class LLMError(DependencyUnavailable):
    """The LLM upstream failed (after the client's retries) or answered with nothing usable."""

    prefix = "The LLM judge failed"


class LLMNotConfigured(LLMError, NotConfigured):
    """No LLM provider is configured, or its credentials are missing."""

    prefix = "No LLM judge is configured"


@runtime_checkable
class LLMProvider(Protocol):
    """A chat model that turns a system prompt and one user message into text."""

    name: str

    def complete(
        self, *, system: str, user: str, max_tokens: int = 512, temperature: float = 0.0
    ) -> str:
        """Return the model's reply text."""
        ...

    async def acomplete(
        self, *, system: str, user: str, max_tokens: int = 512, temperature: float = 0.0
    ) -> str:
        """Return the model's reply text without blocking the event loop."""
        ...


def is_reasoning_model(model: str) -> bool:
    """Whether an OpenAI model is a reasoning model (fixed temperature, reasoning tokens)."""
    return bool(_REASONING_MODEL.match(model.rsplit("/", 1)[-1]))


class _VendorProvider:
    """Client setup shared by every vendor: model, name, timeout, retries, base URL."""

    vendor = ""

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 2,
    ) -> None:
        self.model = model
        self.name = f"{self.vendor}:{model}"
        self.base_url = base_url
        self.timeout = timeout
        self.max_retries = max_retries
        self._api_key = api_key

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, base_url={self.base_url!r})"

    @functools.cached_property
    def _client(self) -> Any:
        """The blocking client, made on first use (the judge's calls use async ones)."""
        return self._make_client(**self._client_options())

    def _make_client(self, **options: Any) -> Any:
        raise NotImplementedError

    def _async_options(self, http_client: Any) -> dict[str, Any]:
        """An async client's options: the SDK's async httpx client on the shared TLS context."""
        return {**self._client_options(), "http_client": http_client(verify=shared_ssl_context())}

    def _client_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "api_key": self._api_key,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
        }
        if self.base_url:
            options["base_url"] = self.base_url
        return options


class _OpenAIBase(_VendorProvider):
    """Shared client setup and error mapping for the two OpenAI API styles."""

    vendor = "openai"

    def _make_client(self, **options: Any) -> Any:
        http_client = openai.DefaultHttpxClient(verify=shared_ssl_context())
        return openai.OpenAI(**options, http_client=http_client)

    def _sampling(
        self, max_tokens: int, temperature: float, *, tokens_field: str
    ) -> dict[str, Any]:
        """Token budget and temperature in the form this model accepts."""
        if is_reasoning_model(self.model):
            # Reasoning models reject temperature and count reasoning against the budget.
            return {tokens_field: max_tokens + REASONING_TOKEN_ALLOWANCE}
        return {tokens_field: max_tokens, "temperature": temperature}

    def _error(self, exc: Exception) -> LLMError:
        return upstream_error(self.name, self.max_retries, exc, key_variable="OPENAI_API_KEY")


class OpenAIChatProvider(_OpenAIBase):
    """OpenAI Chat Completions (also vLLM, Ollama and other OpenAI-compatible servers)."""

    def _request(
        self, system: str, user: str, max_tokens: int, temperature: float
    ) -> dict[str, Any]:
        # The official API wants max_completion_tokens; compatible servers know max_tokens best.
        field = "max_completion_tokens" if is_reasoning_model(self.model) else "max_tokens"
        return {
            "model": self.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            **self._sampling(max_tokens, temperature, tokens_field=field),
        }

    def _text(self, completion: Any) -> str:
        try:
            content = completion.choices[0].message.content
        except (AttributeError, IndexError, TypeError) as exc:
            raise LLMError(f"{self.name}: unexpected chat completion shape") from exc
        return _require_text(self.name, content)

    def complete(
        self, *, system: str, user: str, max_tokens: int = 512, temperature: float = 0.0
    ) -> str:
        """Return the model's reply text."""
        try:
            completion = self._client.chat.completions.create(
                **self._request(system, user, max_tokens, temperature)
            )
        except (openai.OpenAIError, json.JSONDecodeError) as exc:
            raise self._error(exc) from exc
        return self._text(completion)

    async def acomplete(
        self, *, system: str, user: str, max_tokens: int = 512, temperature: float = 0.0
    ) -> str:
        """Return the model's reply text without blocking the event loop."""
        try:
            # A client per call: async connection pools must not outlive their event loop.
            async with openai.AsyncOpenAI(
                **self._async_options(openai.DefaultAsyncHttpxClient)
            ) as client:
                completion = await client.chat.completions.create(
                    **self._request(system, user, max_tokens, temperature)
                )
        except (openai.OpenAIError, json.JSONDecodeError) as exc:
            raise self._error(exc) from exc
        return self._text(completion)


class OpenAIResponsesProvider(_OpenAIBase):
    """OpenAI Responses API (ENGRAMIA_OPENAI_API=responses)."""

    def _request(
        self, system: str, user: str, max_tokens: int, temperature: float
    ) -> dict[str, Any]:
        return {
            "model": self.model,
            "instructions": system,
            "input": user,
            "store": False,
            **self._sampling(max_tokens, temperature, tokens_field="max_output_tokens"),
        }

    def _text(self, response: Any) -> str:
        try:
            content = response.output_text
        except (AttributeError, TypeError) as exc:
            raise LLMError(f"{self.name}: unexpected response shape") from exc
        return _require_text(self.name, content)

    def complete(
        self, *, system: str, user: str, max_tokens: int = 512, temperature: float = 0.0
    ) -> str:
        """Return the model's reply text."""
        try:
            response = self._client.responses.create(
                **self._request(system, user, max_tokens, temperature)
            )
        except (openai.OpenAIError, json.JSONDecodeError) as exc:
            raise self._error(exc) from exc
        return self._text(response)

    async def acomplete(
        self, *, system: str, user: str, max_tokens: int = 512, temperature: float = 0.0
    ) -> str:
        """Return the model's reply text without blocking the event loop."""
        try:
            async with openai.AsyncOpenAI(
                **self._async_options(openai.DefaultAsyncHttpxClient)
            ) as client:
                response = await client.responses.create(
                    **self._request(system, user, max_tokens, temperature)
                )
        except (openai.OpenAIError, json.JSONDecodeError) as exc:
            raise self._error(exc) from exc
        return self._text(response)


class AnthropicProvider(_VendorProvider):
    """Anthropic Messages API."""

    vendor = "anthropic"

    def _make_client(self, **options: Any) -> Any:
        http_client = anthropic.DefaultHttpxClient(verify=shared_ssl_context())
        return anthropic.Anthropic(**options, http_client=http_client)

    def _request(self, system: str, user: str, max_tokens: int) -> dict[str, Any]:
        # The installed Messages API has no temperature parameter, so it is accepted and unused.
        return {
            "model": self.model,
            "system": system,
            "messages": [{"role": "user", "content": user}],
            "max_tokens": max_tokens,
        }

    def _text(self, message: Any) -> str:
        try:
            parts = [block.text for block in message.content if block.type == "text"]
        except (AttributeError, TypeError) as exc:
            raise LLMError(f"{self.name}: unexpected message shape") from exc
        return _require_text(self.name, "".join(parts))

    def _error(self, exc: Exception) -> LLMError:
        return upstream_error(self.name, self.max_retries, exc, key_variable="ANTHROPIC_API_KEY")

    def complete(
        self, *, system: str, user: str, max_tokens: int = 512, temperature: float = 0.0
    ) -> str:
        """Return the model's reply text."""
        try:
            message = self._client.messages.create(**self._request(system, user, max_tokens))
        except (anthropic.AnthropicError, json.JSONDecodeError) as exc:
            raise self._error(exc) from exc
        return self._text(message)

    async def acomplete(
        self, *, system: str, user: str, max_tokens: int = 512, temperature: float = 0.0
    ) -> str:
        """Return the model's reply text without blocking the event loop."""
        try:
            async with anthropic.AsyncAnthropic(
                **self._async_options(anthropic.DefaultAsyncHttpxClient)
            ) as client:
                message = await client.messages.create(**self._request(system, user, max_tokens))
        except (anthropic.AnthropicError, json.JSONDecodeError) as exc:
            raise self._error(exc) from exc
        return self._text(message)


@dataclass(frozen=True)
class LLMSettings:
    """Where a provider talks to: vendor, model, credentials, base URL and the OpenAI API style."""

    vendor: str
    model: str
    api_key: str
    base_url: str | None
    openai_api: str = "chat"  # "chat" (Chat Completions) or "responses"


def llm_settings(
    kind: str | None = None,
    model: str | None = None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
) -> LLMSettings:
    """Resolve the vendor named by `kind` (or ENGRAMIA_LLM) and its environment, or raise.

    Raises LLMNotConfigured when no vendor is chosen or its credentials are missing.
    """
    env_kind = (_env("ENGRAMIA_LLM") or "").lower() or None
    kind = (kind or env_kind or "none").strip().lower()
    if kind == "none":
        raise LLMNotConfigured(f"No LLM provider is configured: {_HOW_TO_CONFIGURE}.")
    if kind not in DEFAULT_MODELS:
        raise LLMNotConfigured(
            f"Unknown LLM provider {kind!r} (ENGRAMIA_LLM must be openai, anthropic or none): "
            f"{_HOW_TO_CONFIGURE}."
        )
    # ENGRAMIA_LLM_MODEL belongs to the env-selected vendor; a project choosing another vendor
    # must not inherit, say, a GPT model name for Claude.
    env_model = _env("ENGRAMIA_LLM_MODEL") if env_kind in (None, kind) else None
    model = model or env_model or DEFAULT_MODELS[kind]
    if kind == "anthropic":
        api_key = api_key or _env("ANTHROPIC_API_KEY")
        if not api_key:
            raise LLMNotConfigured(
                "ENGRAMIA_LLM=anthropic but ANTHROPIC_API_KEY is not set; set ANTHROPIC_API_KEY "
                "(and ANTHROPIC_BASE_URL for a proxy or gateway)."
            )
        return LLMSettings(kind, model, api_key, base_url or _env("ANTHROPIC_BASE_URL"))
    api_key = api_key or _env("OPENAI_API_KEY")
    if not api_key:
        raise LLMNotConfigured(
            "ENGRAMIA_LLM=openai but OPENAI_API_KEY is not set; set OPENAI_API_KEY (any "
            "placeholder works for a local OpenAI-compatible server at OPENAI_BASE_URL)."
        )
    style = (_env("ENGRAMIA_OPENAI_API") or "chat").lower()
    if style not in OPENAI_API_STYLES:
        raise LLMNotConfigured(
            f"Unknown ENGRAMIA_OPENAI_API={style!r}; use 'chat' (default) or 'responses'."
        )
    return LLMSettings(kind, model, api_key, base_url or _env("OPENAI_BASE_URL"), style)


def get_llm(
    kind: str | None = None,
    model: str | None = None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout: float = 30.0,
    max_retries: int = 2,
) -> LLMProvider:
    """Build the LLM provider named by `kind` (or ENGRAMIA_LLM), or raise LLMNotConfigured."""
    found = llm_settings(kind, model, base_url=base_url, api_key=api_key)
    provider_class: type[_VendorProvider]
    if found.vendor == "anthropic":
        provider_class = AnthropicProvider
    elif found.openai_api == "responses":
        provider_class = OpenAIResponsesProvider
    else:
        provider_class = OpenAIChatProvider
    provider = provider_class(
        found.model,
        api_key=found.api_key,
        base_url=found.base_url,
        timeout=timeout,
        max_retries=max_retries,
    )
    return cast(LLMProvider, provider)


def _env(variable: str) -> str | None:
    """An environment variable, with blank treated as unset."""
    value = os.environ.get(variable, "").strip()
    return value or None


def _require_text(name: str, content: object) -> str:
    """The reply text, or LLMError when the model returned none."""
    if not isinstance(content, str) or not content.strip():
        raise LLMError(f"{name}: the model returned no text")
    return content


def upstream_error(
    name: str,
    max_retries: int,
    exc: Exception,
    *,
    key_variable: str,
    error_class: type[LLMError] = LLMError,
) -> LLMError:
    """A clear LLMError for an SDK exception (the SDK has already retried 429/5xx/timeouts)."""
    status = getattr(exc, "status_code", None)
    if status in (401, 403):
        detail = f"the API key was rejected (HTTP {status}); check {key_variable}"
    elif status is not None:
        detail = f"HTTP {status}: {_short(str(exc))}"
    elif isinstance(exc, openai.APITimeoutError | anthropic.APITimeoutError):
        detail = "the request timed out"
    elif isinstance(exc, openai.APIConnectionError | anthropic.APIConnectionError):
        detail = f"could not connect: {_short(str(exc))}"
    elif isinstance(exc, json.JSONDecodeError):
        detail = f"the response was not valid JSON: {_short(str(exc))}"
    else:
        detail = _short(str(exc)) or type(exc).__name__
    retryable = isinstance(exc, openai.APIConnectionError | anthropic.APIConnectionError) or (
        status is not None and (status in (408, 409, 429) or status >= 500)
    )
    plural = "retry" if max_retries == 1 else "retries"
    retried = f" after {max_retries} {plural}" if retryable and max_retries else ""
    return error_class(f"LLM request to {name} failed{retried}: {detail}")


def _short(text: str, limit: int = 300) -> str:
    """Text cut to a readable length for an error message."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
