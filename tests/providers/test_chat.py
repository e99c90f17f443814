"""Chat with tools and streaming: each vendor's wire format through its real SDK, to a fake."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from memory.providers.chat import (
    ChatError,
    ChatMessage,
    ChatNotConfigured,
    ChatRequest,
    Finished,
    TextDelta,
    ToolArgumentsDelta,
    ToolCall,
    ToolCallStarted,
    ToolSpec,
    close_clients,
    get_chat,
)
from tests.fakes.llm_servers import (
    CHAT_COMPLETIONS_PATH,
    MESSAGES_PATH,
    RESPONSES_PATH,
    FakeLLMServer,
    Reply,
)
from tests.providers.test_llm import ENV_VARIABLES

VENDORS = {
    "chat": ("openai", CHAT_COMPLETIONS_PATH),
    "responses": ("openai", RESPONSES_PATH),
    "anthropic": ("anthropic", MESSAGES_PATH),
}
WEATHER = ToolSpec(
    "get_weather",
    "The weather in a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ENV_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(default="hello there") as server:
        yield server


def configure(monkeypatch: pytest.MonkeyPatch, fake: FakeLLMServer, style: str) -> None:
    vendor, _ = VENDORS[style]
    monkeypatch.setenv("ENGRAMIA_LLM", vendor)
    if vendor == "anthropic":
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.anthropic_base_url)
    else:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
        monkeypatch.setenv("ENGRAMIA_OPENAI_API", style)


def conversation() -> list[ChatMessage]:
    call = ToolCall("call_1", "get_weather", '{"city": "Oslo"}')
    return [
        ChatMessage("user", "Weather in Oslo?"),
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage("tool", "12 C and rain", tool_call_id="call_1"),
    ]


def tool_request(**fields: Any) -> ChatRequest:
    """A request with the weather tool, after a conversation that called it once."""
    return ChatRequest(
        model="m-1",
        system="Use tools.",
        messages=conversation(),
        tools=[WEATHER],
        parallel_tool_calls=False,
        **fields,
    )


def run(coroutine: Any) -> Any:
    async def with_cleanup() -> Any:
        try:
            return await coroutine
        finally:
            await close_clients()

    return asyncio.run(with_cleanup())


async def collect(provider: Any, request: ChatRequest) -> list[Any]:
    return [event async for event in provider.stream(request)]


@pytest.mark.parametrize("style", VENDORS)
def test_a_whole_answer_with_text_and_usage(style, fake, monkeypatch):
    configure(monkeypatch, fake, style)
    request = ChatRequest(model="m-1", system="Be brief.", messages=[ChatMessage("user", "Hi")])
    result = run(get_chat().complete(request))
    assert (result.text, result.finish, result.tool_calls) == ("hello there", "stop", [])
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (10, 5)
    assert fake.requests[0].path == VENDORS[style][1]


@pytest.mark.parametrize("style", VENDORS)
def test_tool_calls_and_tool_results_round_trip_in_each_wire_format(style, fake, monkeypatch):
    configure(monkeypatch, fake, style)
    fake.enqueue(Reply.calling("get_weather", {"city": "Bergen"}))
    request = tool_request(forced_tool="get_weather")
    result = run(get_chat().complete(request))
    assert result.finish == "tool_calls" and result.text == ""
    assert [(c.name, json.loads(c.arguments)) for c in result.tool_calls] == [
        ("get_weather", {"city": "Bergen"})
    ]
    sent = json.dumps(fake.requests[0].json)
    assert "call_1" in sent and "12 C and rain" in sent and "Oslo" in sent
    body = fake.requests[0].json
    if style == "chat":
        assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
        assert body["messages"][0] == {"role": "system", "content": "Use tools."}
        assert body["messages"][-1] == {
            "role": "tool",
            "tool_call_id": "call_1",
            "content": "12 C and rain",
        }
    elif style == "responses":
        assert body["tool_choice"] == {"type": "function", "name": "get_weather"}
        assert body["input"][-1]["type"] == "function_call_output" and body["store"] is False
    else:
        assert body["tool_choice"] == {
            "type": "tool",
            "name": "get_weather",
            "disable_parallel_tool_use": True,
        }
        assert body["messages"][-1]["content"][0]["type"] == "tool_result"
        assert body["tools"][0]["input_schema"]["required"] == ["city"]


@pytest.mark.parametrize("style", VENDORS)
def test_a_streamed_answer_arrives_piece_by_piece_then_finishes(style, fake, monkeypatch):
    configure(monkeypatch, fake, style)
    fake.enqueue(Reply(text="one two three"))
    request = ChatRequest(model="m-1", system="", messages=[ChatMessage("user", "count")])
    events = run(collect(get_chat(), request))
    pieces = [event.text for event in events if isinstance(event, TextDelta)]
    assert pieces == ["one ", "two ", "three"]
    assert isinstance(events[-1], Finished) and events[-1].result.text == "one two three"
    assert fake.requests[0].json["stream"] is True


@pytest.mark.parametrize("style", VENDORS)
def test_streamed_tool_calls_start_then_carry_their_arguments(style, fake, monkeypatch):
    configure(monkeypatch, fake, style)
    fake.enqueue(
        Reply(tool_calls=[("get_weather", '{"city": "Oslo"}'), ("get_weather", '{"city": "Rome"}')])
    )
    request = ChatRequest(model="m-1", system="", messages=conversation()[:1], tools=[WEATHER])
    events = run(collect(get_chat(), request))
    starts = [event for event in events if isinstance(event, ToolCallStarted)]
    assert [(start.index, start.name) for start in starts] == [
        (0, "get_weather"),
        (1, "get_weather"),
    ]
    assert any(isinstance(event, ToolArgumentsDelta) for event in events)
    result = events[-1].result
    assert result.finish == "tool_calls"
    assert [json.loads(call.arguments)["city"] for call in result.tool_calls] == ["Oslo", "Rome"]


@pytest.mark.parametrize("style", VENDORS)
@pytest.mark.parametrize("streamed", [False, True])
def test_an_answer_cut_by_the_token_budget_finishes_as_length(style, streamed, fake, monkeypatch):
    configure(monkeypatch, fake, style)
    fake.enqueue(Reply(text="cut short", finish="length"))
    request = ChatRequest(model="m", system="", messages=[ChatMessage("user", "x")], max_tokens=3)
    provider = get_chat()
    if streamed:
        result = run(collect(provider, request))[-1].result
    else:
        result = run(provider.complete(request))
    assert (result.finish, result.text) == ("length", "cut short")
    body = fake.requests[0].json
    budget = {"chat": "max_tokens", "responses": "max_output_tokens", "anthropic": "max_tokens"}
    assert body[budget[style]] == 3


@pytest.mark.parametrize("style", VENDORS)
def test_an_upstream_failure_is_a_chat_error_naming_the_vendor(style, fake, monkeypatch):
    configure(monkeypatch, fake, style)
    fake.enqueue(Reply(status=500))
    request = ChatRequest(model="m-9", system="", messages=[ChatMessage("user", "x")])
    with pytest.raises(ChatError, match=r"to \w+:m-9 failed: HTTP 500"):
        run(get_chat(max_retries=0).complete(request))


@pytest.mark.parametrize("style", VENDORS)
def test_a_streamed_request_refused_upstream_is_a_chat_error_naming_the_vendor(
    style, fake, monkeypatch
):
    configure(monkeypatch, fake, style)
    fake.enqueue(Reply(status=500))
    request = ChatRequest(model="m-9", system="", messages=[ChatMessage("user", "x")])
    with pytest.raises(ChatError, match=r"to \w+:m-9 failed: HTTP 500"):
        run(collect(get_chat(max_retries=0), request))


# An error event after some text, in each wire format (what each vendor sends when a stream
# fails after it started: OpenAI's `error` object, Responses' `error` event, Anthropic's).
MID_STREAM_ERRORS = {
    "chat": (
        'data: {"choices": [{"index": 0, "delta": {"content": "par"}}]}\n\n'
        'data: {"error": {"message": "The server had an error", "type": "server_error"}}\n\n'
    ),
    "responses": (
        'event: response.output_text.delta\ndata: {"type": "response.output_text.delta",'
        ' "output_index": 0, "delta": "par"}\n\n'
        'event: error\ndata: {"type": "error", "code": "server_error",'
        ' "message": "The server had an error"}\n\n'
    ),
    "anthropic": (
        'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0,'
        ' "delta": {"type": "text_delta", "text": "par"}}\n\n'
        'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error",'
        ' "message": "The server had an error"}}\n\n'
    ),
}


@pytest.mark.parametrize("style", VENDORS)
def test_an_error_event_mid_stream_is_a_chat_error_with_its_message(style, fake, monkeypatch):
    configure(monkeypatch, fake, style)
    fake.enqueue(Reply(raw_body=MID_STREAM_ERRORS[style].encode()))
    request = ChatRequest(model="m-9", system="", messages=[ChatMessage("user", "x")])
    seen: list[Any] = []

    async def read() -> None:
        async for event in get_chat(max_retries=0).stream(request):
            seen.append(event)

    with pytest.raises(ChatError, match=r"(openai|anthropic):[\w.-]+.*The server had an error"):
        run(read())
    assert [event.text for event in seen] == ["par"]  # what came before the error got through


class BytesResponse:
    """The two things server_sent_events reads of an AsyncAPIResponse, over given chunks."""

    http_request = None

    def __init__(self, chunks: list[bytes]) -> None:
        self.http_response = self
        self.chunks = chunks

    async def aiter_bytes(self):
        for chunk in self.chunks:
            yield chunk


def read_events(chunks: list[bytes]) -> list[Any]:
    from memory.providers.chat.events import server_sent_events

    async def read() -> list[Any]:
        events = server_sent_events(
            BytesResponse(chunks), timeout_error=OSError, connection_error=OSError
        )
        return [event async for event in events]

    return asyncio.run(read())


def test_events_follow_the_sse_format_whichever_way_the_body_is_cut():
    body = (
        "\ufeff: a comment, then a keep-alive\r\n\r\n"
        'event: one\r\ndata: {"a":\r\ndata:1}\r\nid: 7\r\n\r\n'
        "event: empty\n\n"  # no data: no event
        'data: {"b": 2}\r\r'  # bare CRs end lines too
        'data: {"unfinished": true}'  # no blank line before the body ends: dropped
    ).encode()
    expected = [("one", {"a": 1}), (None, {"b": 2})]
    assert read_events([body]) == expected
    # Every cut of the body into two chunks, including between the CR and LF of a CRLF.
    for cut in range(1, len(body)):
        assert read_events([body[:cut], body[cut:]]) == expected, cut


def test_line_separators_inside_json_strings_are_not_line_ends():
    """U+2028, U+2029 and U+0085 may stand raw in JSON strings; str.splitlines would cut there."""
    text = "a\u2028b\u2029c\x85d"
    body = f"data: {json.dumps({'text': text}, ensure_ascii=False)}\n\n".encode()
    assert read_events([body]) == [(None, {"text": text})]


def test_nothing_after_done_is_read_as_an_event():
    body = b'data: {"a": 1}\n\ndata: [DONE]\n\ndata: {"late": true}\n\n'
    assert read_events([body]) == [(None, {"a": 1})]


@contextmanager
def one_raw_answer(
    monkeypatch: pytest.MonkeyPatch, style: str, body: str, *, hold: float = 0.0
) -> Iterator[None]:
    """A server that answers one request with these SSE bytes (chunked), keeps the socket open
    for `hold` seconds, then closes it without ending the body; the vendor is pointed at it."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(65536)
            head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            head += "transfer-encoding: chunked\r\n\r\n"
            data = body.encode()
            connection.sendall(head.encode() + b"%x\r\n%s\r\n" % (len(data), data))
            time.sleep(hold)

    server = threading.Thread(target=serve, daemon=True)
    server.start()

    class Raw:  # only what configure() reads
        openai_base_url = f"http://127.0.0.1:{port}/v1"
        anthropic_base_url = f"http://127.0.0.1:{port}"

    configure(monkeypatch, Raw(), style)  # type: ignore[arg-type]
    try:
        yield
    finally:
        server.join(10)
        listener.close()


async def text_until_error(provider: Any, request: ChatRequest, seen: list[str]) -> None:
    async for event in provider.stream(request):
        if isinstance(event, TextDelta):
            seen.append(event.text)


@pytest.mark.parametrize("style", VENDORS)
def test_a_connection_cut_mid_stream_is_a_chat_error(style, monkeypatch):
    """The server sends one event and closes the socket: the SDK's connection error, mapped."""
    first = MID_STREAM_ERRORS[style].split("\n\n")[0] + "\n\n"
    request = ChatRequest(model="m-9", system="", messages=[ChatMessage("user", "x")])
    seen: list[str] = []
    with (
        one_raw_answer(monkeypatch, style, first),
        pytest.raises(ChatError, match=r"m-9 failed: could not connect"),
    ):
        run(text_until_error(get_chat(max_retries=0), request, seen))
    assert seen == ["par"]  # the event before the cut got through


def test_the_answer_ends_at_done_even_if_the_server_keeps_the_body_open(monkeypatch):
    """OpenAI's [DONE] ends the answer: what follows is drained for DRAIN_SECONDS at most."""
    from memory.providers.chat.events import DRAIN_SECONDS

    body = MID_STREAM_ERRORS["chat"].split("\n\n")[0] + "\n\ndata: [DONE]\n\n"
    body += 'data: {"choices": [{"index": 0, "delta": {"content": "late"}}]}\n\n'
    request = ChatRequest(model="m-9", system="", messages=[ChatMessage("user", "x")])
    with one_raw_answer(monkeypatch, "chat", body, hold=3.0):
        started = time.monotonic()
        events = run(collect(get_chat(max_retries=0), request))
        took = time.monotonic() - started
    assert events[-1].result.text == "par"
    assert took < 1.0 + DRAIN_SECONDS  # not the 3 s the server holds the socket open


@pytest.mark.parametrize("style", VENDORS)
def test_streamed_events_are_read_as_plain_json_not_as_sdk_objects(style, fake, monkeypatch):
    """A typed SDK object per event costs ~0.2 ms of CPU per token of every open stream with
    openai (bench/stream_events.py): the SDKs' stream classes must not be used."""
    import anthropic
    import openai

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a streamed answer went through the SDK's typed stream")

    monkeypatch.setattr(openai.AsyncStream, "__aiter__", refuse)
    monkeypatch.setattr(anthropic.AsyncStream, "__aiter__", refuse)
    configure(monkeypatch, fake, style)
    fake.enqueue(Reply(text="one two"))
    request = ChatRequest(model="m-1", system="", messages=[ChatMessage("user", "count")])
    events = run(collect(get_chat(), request))
    assert events[-1].result.text == "one two"


def test_json_response_formats_map_to_each_api(fake, monkeypatch):
    schema = {"name": "answer", "schema": {"type": "object"}, "strict": True}
    request = ChatRequest(
        model="m",
        system="S",
        messages=[ChatMessage("user", "x")],
        response_format={"type": "json_schema", "json_schema": schema},
    )
    for style in VENDORS:
        configure(monkeypatch, fake, style)
        run(get_chat().complete(request))
    chat, responses, anthropic = (request.json for request in fake.requests)
    assert chat["response_format"]["json_schema"] == schema
    assert responses["text"]["format"] == {"type": "json_schema", **schema}
    assert anthropic["output_config"]["format"] == {
        "type": "json_schema",
        "schema": {"type": "object"},
    }


def test_without_a_vendor_runs_are_not_configured(monkeypatch):
    monkeypatch.setenv("ENGRAMIA_LLM", "none")
    with pytest.raises(ChatNotConfigured) as refused:
        get_chat()
    assert refused.value.public_message.startswith("No LLM is configured: No LLM provider")


def _typed_create(style: str, client: Any) -> Any:
    return client.chat.completions.create if style == "chat" else client.responses.create


@pytest.mark.parametrize("style", ["chat", "responses"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_body_sent_untransformed_is_the_body_the_sdk_would_have_sent(
    style, stream, fake, monkeypatch
):
    # Runs pass their bodies around the openai SDK's typed-parameter rewrite (untransformed);
    # the rewrite must have nothing to change in them: tools, tool calls and results, sampling,
    # a JSON schema, streaming.
    configure(monkeypatch, fake, style)
    schema = {"name": "answer", "schema": {"type": "object"}, "strict": True}
    request = tool_request(
        tool_choice="required",
        temperature=0.3,
        top_p=0.9,
        max_tokens=300,
        response_format={"type": "json_schema", "json_schema": schema},
    )
    provider = get_chat()
    body = provider.request(request, stream=stream)

    async def both_ways() -> None:
        create = _typed_create(style, provider._client())
        for arguments in (body, provider.untransformed(body)):
            answer = await create(**arguments)
            if stream:
                async for _ in answer:
                    pass

    run(both_ways())
    typed, untouched = (request.json for request in fake.requests)
    assert untouched == typed
    assert untouched["messages" if style == "chat" else "input"]  # the body's, not the stub
