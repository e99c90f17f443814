"""Django's WSGI application under ASGI (engramia_site.wsgi_bridge): an ordinary request enters
its thread once and leaves once; large bodies and streaming responses still flow in pieces."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from engramia_site import wsgi_bridge
from engramia_site.wsgi_bridge import WSGIBridge

SCOPE = {
    "type": "http",
    "http_version": "1.1",
    "method": "POST",
    "path": "/v1/recall",
    "raw_path": b"/v1/recall",
    "query_string": b"",
    "headers": [(b"content-type", b"application/json")],
    "client": ("127.0.0.1", 5000),
    "server": ("127.0.0.1", 8000),
}


def _serve(app: Any, chunks: list[bytes], *, disconnect: bool = False) -> list[dict[str, Any]]:
    """Run one request through the bridge: the body in `chunks`, then what was sent back."""
    sent: list[dict[str, Any]] = []
    messages = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]
    if disconnect:
        messages = [*messages[:1], {"type": "http.disconnect"}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(WSGIBridge(app, workers=2)(dict(SCOPE), receive, send))
    return sent


@pytest.fixture
def crossings(monkeypatch) -> list[str]:
    """Each time the view's thread waits on the event loop."""
    seen: list[str] = []
    original = asyncio.run_coroutine_threadsafe

    def counted(coroutine: Any, loop: Any) -> Any:
        seen.append(coroutine.__qualname__)
        return original(coroutine, loop)

    monkeypatch.setattr(wsgi_bridge.asyncio, "run_coroutine_threadsafe", counted)
    return seen


def echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read()
    start_response("201 Created", [("Content-Type", "text/plain"), ("X-Length", str(len(body)))])
    return [b"got:", body[:20]]


def test_an_ordinary_request_never_waits_on_the_loop_from_its_thread(crossings):
    sent = _serve(echo, [b'{"task": "a", ', b'"limit": 3}'])
    assert crossings == []
    start, body = sent
    assert start["status"] == 201
    assert (b"x-length", b"25") in start["headers"]
    assert body == {"type": "http.response.body", "body": b'got:{"task": "a", "limit'}


def test_a_body_larger_than_the_prefetch_is_read_as_the_view_consumes_it(crossings):
    line = b"x" * 1023 + b"\n"
    chunks = [line * 64] * 10  # 640 KiB in 64 KiB messages, above PREFETCH_BYTES

    def lines(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        first = stream.readline()
        rest = stream.read()
        start_response("200 OK", [])
        return [b"%d %d" % (len(first), len(first) + len(rest))]

    sent = _serve(lines, chunks)
    assert sent[-1]["body"] == b"1024 655360"
    assert len(crossings) >= 1 and all("receive" in name for name in crossings)


def test_a_streaming_response_is_sent_chunk_by_chunk_and_closed():
    closed: list[bool] = []

    class Streaming:
        streaming = True

        def __iter__(self) -> Iterator[bytes]:
            yield from (b"one ", b"", b"two")

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Any) -> Streaming:
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        return Streaming()

    sent = _serve(app, [b""])
    assert [message.get("body") for message in sent] == [None, b"one ", b"two", b""]
    assert [message.get("more_body", False) for message in sent[1:]] == [True, True, False]
    assert closed == [True]


def test_the_legacy_write_callable_is_part_of_the_body():
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [])
        write(b"written ")
        return [b"returned"]

    assert _serve(app, [b""])[-1]["body"] == b"written returned"


def test_a_client_that_leaves_before_its_body_is_whole_gets_no_view():
    called: list[bool] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        called.append(True)
        start_response("200 OK", [])
        return [b""]

    assert _serve(app, [b"part", b"never sent"], disconnect=True) == []
    assert called == []


def test_an_exception_in_the_application_reaches_the_server():
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _serve(app, [b""])


@pytest.mark.parametrize("header", [(b"expect", b"100-continue"), (b"content-length", b"9999999")])
def test_a_body_is_not_read_ahead_when_the_view_may_refuse_it_first(header):
    received: list[str] = []

    def refuse(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("413 Payload Too Large", [])  # as the size middleware does, unread
        return [b"too large"]

    async def receive() -> dict[str, Any]:
        received.append("receive")  # uvicorn sends 100 Continue on the first receive()
        return {"type": "http.request", "body": b"x", "more_body": True}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {**SCOPE, "headers": [*SCOPE["headers"], header]}
    asyncio.run(WSGIBridge(refuse, workers=1)(scope, receive, send))
    assert received == []
    assert sent[0]["status"] == 413 and sent[-1]["body"] == b"too large"


def _serve_async_stream(body: Any, *, leave_after: int | None = None) -> list[dict[str, Any]]:
    """Serve a StreamingHttpResponse over the async iterator `body`; the client stays until the
    end, or leaves once it has `leave_after` body messages. What was sent."""
    from django.http import StreamingHttpResponse

    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": b"{}", "more_body": False}]

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        response = StreamingHttpResponse(body, content_type="text/event-stream")
        start_response("200 OK", list(response.items()))
        return response

    async def main() -> None:
        gone = asyncio.Event()

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            await gone.wait()  # as a server does: nothing until the client disconnects
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            bodies = [m for m in sent if m["type"] == "http.response.body"]
            if leave_after is not None and len(bodies) >= leave_after:
                gone.set()

        await WSGIBridge(app, workers=2)(dict(SCOPE), receive, send)

    asyncio.run(main())
    return sent


def test_an_async_stream_is_sent_from_the_loop_as_it_is_produced(crossings):
    from asgiref.sync import sync_to_async

    seen: dict[str, Any] = {}

    async def events() -> Any:
        seen["loop"] = threading.get_ident()
        seen["db"] = [await sync_to_async(threading.get_ident)() for _ in range(2)]
        for part in (b"event: one\n\n", b"event: two\n\n"):
            yield part

    sent = _serve_async_stream(events())
    assert crossings == []  # the view's thread never waited on the loop for it
    assert seen["loop"] == threading.main_thread().ident  # asyncio.run's loop, this thread
    first, second = seen["db"]
    assert first == second != seen["loop"]  # the stream's own thread for its database work
    bodies = [m.get("body") for m in sent if m["type"] == "http.response.body"]
    assert bodies == [b"event: one\n\n", b"event: two\n\n", b""]
    assert sent[0]["type"] == "http.response.start"


def test_a_client_that_leaves_cancels_the_async_stream():
    outcome: list[str] = []

    async def events() -> Any:
        try:
            yield b"event: first\n\n"
            await asyncio.sleep(30)  # the model, thinking
            yield b"event: never\n\n"
        except asyncio.CancelledError:
            outcome.append("cancelled")  # where the run is handed over to a job
            raise
        finally:
            outcome.append("closed")

    sent = _serve_async_stream(events(), leave_after=1)
    assert outcome == ["cancelled", "closed"]
    assert [m.get("body") for m in sent if m["type"] == "http.response.body"] == [
        b"event: first\n\n"
    ]


def test_the_views_request_ends_before_its_async_stream_is_sent():
    """Django's request_finished (a pooled connection goes back) fires in the view's thread,
    so an open stream holds no connection while it waits on the model."""
    from django.core.signals import request_finished

    finished: list[int] = []

    def note(**_kwargs: Any) -> None:
        finished.append(threading.get_ident())

    async def events() -> Any:
        yield b"event: one\n\n" if finished else b"event: not finished\n\n"

    request_finished.connect(note)
    try:
        sent = _serve_async_stream(events())
    finally:
        request_finished.disconnect(note)
    bodies = [m.get("body") for m in sent if m["type"] == "http.response.body"]
    assert bodies[:1] == [b"event: one\n\n"]
    assert finished and finished[0] != threading.main_thread().ident


def test_a_stream_cut_while_sending_is_closed_before_the_bridge_returns():
    """The client leaves while an event is being sent (a slow client): the view's own iterator
    is closed by the bridge, in the stream's context, not later by the garbage collector."""
    from django.http import StreamingHttpResponse

    returned, outcome = [False], []

    async def events() -> Any:
        try:
            yield b"event: first\n\n"
            yield b"event: second\n\n"
        finally:
            outcome.append("closed after return" if returned[0] else "closed")

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        response = StreamingHttpResponse(events(), content_type="text/event-stream")
        start_response("200 OK", list(response.items()))
        return response

    async def main() -> None:
        gone = asyncio.Event()
        messages = [{"type": "http.request", "body": b"{}", "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message.get("body"):
                gone.set()  # the client leaves while this event is on its way
                await asyncio.sleep(30)

        await WSGIBridge(app, workers=2)(dict(SCOPE), receive, send)
        returned[0] = True

    asyncio.run(main())
    assert outcome == ["closed"]
