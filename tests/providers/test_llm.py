"""LLM providers: each vendor wire format through the real SDK client against a loopback fake."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from memory.providers.llm import (
    DEFAULT_MODELS,
    AnthropicProvider,
    LLMError,
    LLMNotConfigured,
    LLMProvider,
    OpenAIChatProvider,
    OpenAIResponsesProvider,
    get_llm,
)
from tests.fakes.llm_servers import (
    CHAT_COMPLETIONS_PATH,
    MESSAGES_PATH,
    RESPONSES_PATH,
    FakeLLMServer,
    Reply,
)

ENV_VARIABLES = (
    "ENGRAMIA_LLM",
    "ENGRAMIA_LLM_MODEL",
    "ENGRAMIA_OPENAI_API",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_CUSTOM_HEADERS",
    "ANTHROPIC_PROFILE",
)
VENDOR_PATHS = {"openai": CHAT_COMPLETIONS_PATH, "anthropic": MESSAGES_PATH}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer or CI credentials leak into these tests."""
    for variable in ENV_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def fake() -> Iterator[FakeLLMServer]:
    """A loopback fake answering "hello" unless scripted otherwise."""
    with FakeLLMServer(default="hello") as server:
        yield server


def use_openai(monkeypatch: pytest.MonkeyPatch, fake: FakeLLMServer) -> None:
    """Configure the openai provider through the environment, pointed at the fake."""
    monkeypatch.setenv("ENGRAMIA_LLM", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai")
    monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)


def use_anthropic(monkeypatch: pytest.MonkeyPatch, fake: FakeLLMServer) -> None:
    """Configure the anthropic provider through the environment, pointed at the fake."""
    monkeypatch.setenv("ENGRAMIA_LLM", "anthropic")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.anthropic_base_url)


def provider_for(vendor: str, fake: FakeLLMServer, **options: float) -> LLMProvider:
    """A provider of `vendor` pointed at the fake by explicit arguments."""
    base_url = fake.openai_base_url if vendor == "openai" else fake.anthropic_base_url
    return get_llm(vendor, base_url=base_url, api_key="test-key", **options)  # type: ignore[arg-type]


# -- wire formats ----------------------------------------------------------------------------


def test_openai_chat_sends_system_message_then_user_message(
    monkeypatch: pytest.MonkeyPatch, fake: FakeLLMServer
) -> None:
    use_openai(monkeypatch, fake)
    monkeypatch.setenv("ENGRAMIA_LLM_MODEL", "gpt-4.1")

    llm = get_llm()
    reply = llm.complete(system="Be terse.", user="Say hi.", max_tokens=64, temperature=0.2)

    assert isinstance(llm, OpenAIChatProvider)
    assert llm.name == "openai:gpt-4.1"
    assert reply == "hello"
    [request] = fake.requests
    assert request.path == CHAT_COMPLETIONS_PATH
    assert request.headers["authorization"] == "Bearer sk-test-openai"
    assert request.json["model"] == "gpt-4.1"
    assert request.json["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Say hi."},
    ]
    assert request.json["max_tokens"] == 64
    assert request.json["temperature"] == 0.2


def test_openai_chat_async_uses_the_same_wire_format(
    monkeypatch: pytest.MonkeyPatch, fake: FakeLLMServer
) -> None:
    use_openai(monkeypatch, fake)
    llm = get_llm()

    reply = asyncio.run(llm.acomplete(system="S", user="U"))

    assert reply == "hello"
    [request] = fake.requests
    assert request.path == CHAT_COMPLETIONS_PATH
    assert request.json["model"] == DEFAULT_MODELS["openai"]
    assert [message["role"] for message in request.json["messages"]] == ["system", "user"]


def test_openai_reasoning_model_gets_completion_token_budget_and_no_temperature(
    fake: FakeLLMServer,
) -> None:
    llm = get_llm("openai", "o4-mini", base_url=fake.openai_base_url, api_key="k")

    llm.complete(system="S", user="U", max_tokens=100, temperature=0.5)

    body = fake.requests[0].json
    assert "temperature" not in body
    assert "max_tokens" not in body
    assert body["max_completion_tokens"] > 100


def test_openai_responses_api_when_env_selects_it(
    monkeypatch: pytest.MonkeyPatch, fake: FakeLLMServer
) -> None:
    use_openai(monkeypatch, fake)
    monkeypatch.setenv("ENGRAMIA_OPENAI_API", "responses")
    llm = get_llm()

    sync_reply = llm.complete(system="Be terse.", user="Say hi.", max_tokens=80)
    async_reply = asyncio.run(llm.acomplete(system="Be terse.", user="Say hi."))

    assert isinstance(llm, OpenAIResponsesProvider)
    assert (sync_reply, async_reply) == ("hello", "hello")
    first, second = fake.requests
    assert first.path == second.path == RESPONSES_PATH
    assert first.json["instructions"] == "Be terse."
    assert first.json["input"] == "Say hi."
    assert first.json["max_output_tokens"] == 80
    assert first.json["model"] == DEFAULT_MODELS["openai"]


def test_unknown_openai_api_style_is_not_configured(
    monkeypatch: pytest.MonkeyPatch, fake: FakeLLMServer
) -> None:
    use_openai(monkeypatch, fake)
    monkeypatch.setenv("ENGRAMIA_OPENAI_API", "assistants")

    with pytest.raises(LLMNotConfigured, match="ENGRAMIA_OPENAI_API"):
        get_llm()


def test_anthropic_messages_puts_system_at_top_level(
    monkeypatch: pytest.MonkeyPatch, fake: FakeLLMServer
) -> None:
    use_anthropic(monkeypatch, fake)
    llm = get_llm()

    reply = llm.complete(system="Be terse.", user="Say hi.", max_tokens=64)

    assert isinstance(llm, AnthropicProvider)
    assert llm.name == f"anthropic:{DEFAULT_MODELS['anthropic']}"
    assert reply == "hello"
    [request] = fake.requests
    assert request.path == MESSAGES_PATH
    # This SDK sends the key as a bearer token; older ones used x-api-key.
    credentials = (request.headers.get("x-api-key"), request.headers.get("authorization"))
    assert "sk-ant-test" in credentials or "Bearer sk-ant-test" in credentials
    assert request.json["model"] == DEFAULT_MODELS["anthropic"]
    assert request.json["system"] == "Be terse."
    assert request.json["messages"] == [{"role": "user", "content": "Say hi."}]
    assert request.json["max_tokens"] == 64


def test_anthropic_async_joins_text_blocks(
    monkeypatch: pytest.MonkeyPatch, fake: FakeLLMServer
) -> None:
    use_anthropic(monkeypatch, fake)
    monkeypatch.setenv("ENGRAMIA_LLM_MODEL", "claude-opus-4-7")
    llm = get_llm()

    reply = asyncio.run(llm.acomplete(system="S", user="U"))

    assert reply == "hello"
    assert llm.name == "anthropic:claude-opus-4-7"
    assert fake.requests[0].json["model"] == "claude-opus-4-7"


def test_providers_satisfy_the_protocol(fake: FakeLLMServer) -> None:
    for vendor in ("openai", "anthropic"):
        assert isinstance(provider_for(vendor, fake), LLMProvider)


def test_explicit_arguments_beat_the_environment(
    monkeypatch: pytest.MonkeyPatch, fake: FakeLLMServer
) -> None:
    monkeypatch.setenv("ENGRAMIA_LLM", "anthropic")
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there

    llm = get_llm("openai", "local-llama", base_url=fake.openai_base_url, api_key="arg-key")
    llm.complete(system="S", user="U")

    assert llm.name == "openai:local-llama"
    assert fake.requests[0].headers["authorization"] == "Bearer arg-key"


def test_env_model_applies_to_the_env_vendor_whatever_its_case(
    monkeypatch: pytest.MonkeyPatch, fake: FakeLLMServer
) -> None:
    monkeypatch.setenv("ENGRAMIA_LLM", "OpenAI")
    monkeypatch.setenv("ENGRAMIA_LLM_MODEL", "qwen2.5-coder")

    llm = get_llm("openai", base_url=fake.openai_base_url, api_key="k")

    assert llm.name == "openai:qwen2.5-coder"


def test_env_model_for_another_vendor_is_not_borrowed(
    monkeypatch: pytest.MonkeyPatch, fake: FakeLLMServer
) -> None:
    monkeypatch.setenv("ENGRAMIA_LLM", "openai")
    monkeypatch.setenv("ENGRAMIA_LLM_MODEL", "gpt-4.1")

    llm = get_llm("anthropic", base_url=fake.anthropic_base_url, api_key="k")

    assert llm.name == f"anthropic:{DEFAULT_MODELS['anthropic']}"


# -- not configured --------------------------------------------------------------------------


def test_unset_provider_is_not_configured_and_names_the_env_vars() -> None:
    with pytest.raises(LLMNotConfigured) as caught:
        get_llm()

    message = str(caught.value)
    for variable in ("ENGRAMIA_LLM", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        assert variable in message


def test_explicit_none_is_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGRAMIA_LLM", "none")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-present")

    with pytest.raises(LLMNotConfigured, match="ENGRAMIA_LLM"):
        get_llm()


def test_unknown_provider_is_not_configured() -> None:
    with pytest.raises(LLMNotConfigured, match="'gemini'"):
        get_llm("gemini")


@pytest.mark.parametrize(
    ("vendor", "variable"), [("openai", "OPENAI_API_KEY"), ("anthropic", "ANTHROPIC_API_KEY")]
)
def test_missing_key_is_not_configured_and_names_the_key(
    monkeypatch: pytest.MonkeyPatch, vendor: str, variable: str
) -> None:
    monkeypatch.setenv("ENGRAMIA_LLM", vendor)
    monkeypatch.setenv(variable, "   ")

    with pytest.raises(LLMNotConfigured, match=variable):
        get_llm()


def test_not_configured_is_an_llm_error() -> None:
    assert issubclass(LLMNotConfigured, LLMError)


# -- failures and retries --------------------------------------------------------------------


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_one_rate_limit_then_success_is_retried(vendor: str, fake: FakeLLMServer) -> None:
    fake.inject_rate_limits(1, retry_after=0.05)
    llm = provider_for(vendor, fake, max_retries=2)

    reply = llm.complete(system="S", user="U")

    assert reply == "hello"
    assert [request.path for request in fake.requests] == [VENDOR_PATHS[vendor]] * 2


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_one_rate_limit_then_success_is_retried_async(vendor: str, fake: FakeLLMServer) -> None:
    fake.inject_rate_limits(1, retry_after=0.05)
    llm = provider_for(vendor, fake, max_retries=2)

    assert asyncio.run(llm.acomplete(system="S", user="U")) == "hello"
    assert len(fake.requests) == 2


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_rate_limits_beyond_the_retry_budget_raise_llm_error(
    vendor: str, fake: FakeLLMServer
) -> None:
    fake.inject_rate_limits(5, retry_after=0.01)
    llm = provider_for(vendor, fake, max_retries=1)

    with pytest.raises(LLMError, match="after 1 retry: HTTP 429") as caught:
        llm.complete(system="S", user="U")

    assert not isinstance(caught.value, LLMNotConfigured)
    assert len(fake.requests) == 2


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_timeout_raises_llm_error_within_a_bound(vendor: str, fake: FakeLLMServer) -> None:
    fake.default = Reply.slow(10)
    llm = provider_for(vendor, fake, timeout=0.3, max_retries=1)

    started = time.monotonic()
    with pytest.raises(LLMError, match="timed out"):
        llm.complete(system="S", user="U")
    elapsed = time.monotonic() - started

    # Two 0.3 s attempts plus one backoff (at most 0.5 s); far below the 10 s reply.
    assert elapsed < 3
    assert len(fake.requests) == 2


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_timeout_raises_llm_error_async(vendor: str, fake: FakeLLMServer) -> None:
    fake.default = Reply.slow(10)
    llm = provider_for(vendor, fake, timeout=0.3, max_retries=0)

    started = time.monotonic()
    with pytest.raises(LLMError, match="timed out"):
        asyncio.run(llm.acomplete(system="S", user="U"))
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_rejected_key_is_not_retried_and_names_the_key(vendor: str, fake: FakeLLMServer) -> None:
    fake.enqueue(Reply(status=401))
    llm = provider_for(vendor, fake, max_retries=2)

    with pytest.raises(LLMError, match=f"{vendor.upper()}_API_KEY"):
        llm.complete(system="S", user="U")
    assert len(fake.requests) == 1


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_malformed_body_raises_llm_error(vendor: str, fake: FakeLLMServer) -> None:
    fake.enqueue(Reply.malformed())
    llm = provider_for(vendor, fake, max_retries=0)

    with pytest.raises(LLMError, match="not valid JSON"):
        llm.complete(system="S", user="U")


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_unexpected_shape_raises_llm_error(vendor: str, fake: FakeLLMServer) -> None:
    fake.enqueue(Reply(raw_body=b'{"unexpected": true}'))
    llm = provider_for(vendor, fake, max_retries=0)

    with pytest.raises(LLMError, match="unexpected"):
        llm.complete(system="S", user="U")


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_empty_reply_raises_llm_error(vendor: str, fake: FakeLLMServer) -> None:
    fake.enqueue("   ")
    llm = provider_for(vendor, fake)

    with pytest.raises(LLMError, match="no text"):
        llm.complete(system="S", user="U")


@pytest.mark.parametrize(
    ("kind", "style"), [("openai", "chat"), ("openai", "responses"), ("anthropic", "")]
)
def test_judge_clients_share_the_process_tls_context(
    monkeypatch: pytest.MonkeyPatch, fake: FakeLLMServer, kind: str, style: str
) -> None:
    # Loading the CA bundle for a client took ~25-100 ms; a judged learn makes four clients.
    import ssl

    from memory.providers.llm import shared_ssl_context

    shared_ssl_context()
    made: list[object] = []
    create = ssl.create_default_context

    def counted(*args: object, **kwargs: object) -> ssl.SSLContext:
        made.append(args)
        return create(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl, "create_default_context", counted)
    if style:
        monkeypatch.setenv("ENGRAMIA_OPENAI_API", style)
    base_url = fake.openai_base_url if kind == "openai" else fake.anthropic_base_url
    llm = get_llm(kind, base_url=base_url, api_key="k")
    for _ in range(3):
        asyncio.run(llm.acomplete(system="S", user="U"))
    llm.complete(system="S", user="U")
    assert made == []
    assert len(fake.requests) == 4
