"""Loopback fakes of the OpenAI Chat Completions, OpenAI Responses and Anthropic Messages APIs.

Whole and streamed (server-sent events) answers, with text and tool calls, in each vendor's
wire format (tests/fakes/llm_wire.py).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from tests.fakes.llm_wire import (
    CHAT_COMPLETIONS_PATH,
    MESSAGES_PATH,
    RESPONSES_PATH,
    Answer,
    stream_events,
    whole_body,
)

LOOPBACK = "127.0.0.1"
KNOWN_PATHS = (CHAT_COMPLETIONS_PATH, RESPONSES_PATH, MESSAGES_PATH)


@dataclass
class RecordedRequest:
    """One request the fake received, with when it arrived and when it was answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float
    answered_at: float | None = None
    first_token_at: float | None = None  # a streamed answer's first piece of text

    @property
    def json(self) -> dict[str, Any]:
        """The request body as a JSON object (fails loudly if it was not one)."""
        assert isinstance(self.body, dict), f"request body is not a JSON object: {self.body!r}"
        return self.body


@dataclass
class Reply:
    """A scripted answer: assistant text in the vendor's format, or a raw status/body override.

    `tool_calls` are (function name, JSON arguments); `finish="length"` ends the answer on the
    token budget. Streamed, the text goes out in `pieces` (its words by default), each after
    `token_delay` seconds.
    """

    text: str = ""
    status: int = 200
    raw_body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    finish: str = "stop"
    token_delay: float = 0.0
    pieces: list[str] | None = None

    @classmethod
    def calling(cls, name: str, arguments: dict[str, Any] | None = None, text: str = "") -> Reply:
        """An answer that calls one function with these arguments."""
        return cls(text=text, tool_calls=[(name, json.dumps(arguments or {}))])

    def text_pieces(self) -> list[str]:
        """The text as streamed: the given pieces, or word by word."""
        if self.pieces is not None:
            return list(self.pieces)
        return [piece for piece in re.findall(r"\S*\s*", self.text) if piece]

    @classmethod
    def rate_limited(cls, retry_after: float = 0.05) -> Reply:
        """A 429 with a `retry-after` header (seconds; the SDKs accept fractions)."""
        return cls(status=429, headers={"retry-after": f"{retry_after:g}"})

    @classmethod
    def slow(cls, delay: float, text: str = "slow") -> Reply:
        """A reply sent only after `delay` seconds (for client timeouts)."""
        return cls(text=text, delay=delay)

    @classmethod
    def malformed(cls, raw_body: bytes = b'{"choices": [ this is not json') -> Reply:
        """A 200 whose body is not valid JSON."""
        return cls(raw_body=raw_body)


ReplySpec = Reply | str | Callable[[RecordedRequest], "Reply | str"]


class _Server(ThreadingHTTPServer):
    """A thread per request, and a listen backlog for many concurrent streams (default: 5)."""

    daemon_threads = True
    request_queue_size = 256


class FakeLLMServer:
    """A scriptable HTTP server on 127.0.0.1 speaking the three vendor wire formats.

    Replies are taken from a FIFO queue (`enqueue`), falling back to `default` once it is empty.
    A reply may be a `Reply`, plain assistant text, or a callable of the recorded request.
    """

    def __init__(self, replies: Iterable[ReplySpec] = (), *, default: ReplySpec = "ok") -> None:
        self.default: ReplySpec = default
        self._queue: deque[ReplySpec] = deque(replies)
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ids = itertools.count(1)
        self._server = _Server((LOOPBACK, 0), _make_handler(self))
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeLLMServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release any reply still sleeping."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Root URL, e.g. http://127.0.0.1:PORT (the Anthropic SDK's base_url)."""
        return f"http://{LOOPBACK}:{self._server.server_port}"

    @property
    def openai_base_url(self) -> str:
        """The OpenAI SDK's base_url (it appends /chat/completions or /responses)."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """The Anthropic SDK's base_url (it appends /v1/messages)."""
        return self.url

    # -- scripting -------------------------------------------------------------------------

    def enqueue(self, *replies: ReplySpec) -> None:
        """Append replies to the queue."""
        with self._lock:
            self._queue.extend(replies)

    def inject_rate_limits(self, count: int, retry_after: float = 0.05) -> None:
        """Answer the next `count` requests with 429 before anything already queued."""
        with self._lock:
            self._queue.extendleft(Reply.rate_limited(retry_after) for _ in range(count))

    # -- inspection ------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def max_concurrency(self) -> int:
        """The largest number of requests that were in flight at the same moment."""
        events: list[tuple[float, int]] = []
        for request in self.requests:
            events.append((request.received_at, 1))
            events.append((request.answered_at or float("inf"), -1))
        # Ends sort before starts at the same instant, so back-to-back requests do not overlap.
        events.sort()
        in_flight = peak = 0
        for _, delta in events:
            in_flight += delta
            peak = max(peak, in_flight)
        return peak

    # -- serving ---------------------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> ReplySpec:
        with self._lock:
            self._requests.append(request)
            return self._queue.popleft() if self._queue else self.default

    def _wait(self, delay: float) -> None:
        if delay > 0:
            self._stopping.wait(delay)

    def _next_id(self) -> int:
        return next(self._ids)


def _make_handler(fake: FakeLLMServer) -> type[BaseHTTPRequestHandler]:
    """Build a request handler class bound to one fake."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            request = RecordedRequest(
                method="POST",
                path=self.path.split("?", 1)[0],
                headers={key.lower(): value for key, value in self.headers.items()},
                body=body,
                received_at=time.monotonic(),
            )
            spec = fake._record(request)
            reply = _resolve(spec, request)
            fake._wait(reply.delay)
            if _wants_stream(request, reply):
                self._stream(fake, request, reply)
                return
            status, payload, headers = _render(fake, request, reply)
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()
            except OSError:
                pass  # the client gave up (timeout) and closed the socket
            finally:
                request.answered_at = time.monotonic()

        def _stream(self, fake: FakeLLMServer, request: RecordedRequest, reply: Reply) -> None:
            """Answer as server-sent events, one chunk per event, on a connection kept open
            for the next request (as the vendors' APIs do)."""
            answer = _answer(fake, request, reply)
            try:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for name, data in stream_events(request.path, answer, request.json):
                    text = data if isinstance(data, str) else json.dumps(data)
                    text_event = isinstance(data, dict) and _is_text_event(data)
                    if text_event:
                        fake._wait(reply.token_delay)
                    head = f"event: {name}\n" if name else ""
                    event = f"{head}data: {text}\n\n".encode()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                    self.wfile.flush()
                    if text_event and request.first_token_at is None:
                        request.first_token_at = time.monotonic()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                self.close_connection = True  # the client went away mid-stream
            finally:
                request.answered_at = time.monotonic()

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    return Handler


def _resolve(spec: ReplySpec, request: RecordedRequest) -> Reply:
    """Turn a reply spec into a concrete Reply."""
    if callable(spec) and not isinstance(spec, Reply):
        spec = spec(request)
    return spec if isinstance(spec, Reply) else Reply(text=spec)


def _wants_stream(request: RecordedRequest, reply: Reply) -> bool:
    body = request.body if isinstance(request.body, dict) else {}
    return (
        request.path in KNOWN_PATHS
        and bool(body.get("stream"))
        and reply.status == 200
        and reply.raw_body is None
    )


def _is_text_event(data: dict[str, Any]) -> bool:
    """Whether an event carries a piece of text (the slow fake waits before each)."""
    if data.get("type") in ("response.output_text.delta", "content_block_delta"):
        return True
    choices = data.get("choices") or []
    return bool(choices and (choices[0].get("delta") or {}).get("content"))


def _answer(fake: FakeLLMServer, request: RecordedRequest, reply: Reply) -> Answer:
    body = request.body if isinstance(request.body, dict) else {}
    return Answer(
        pieces=reply.text_pieces(),
        tool_calls=list(reply.tool_calls),
        finish=reply.finish,
        number=fake._next_id(),
        model=str(body.get("model", "fake-model")),
    )


def _render(
    fake: FakeLLMServer, request: RecordedRequest, reply: Reply
) -> tuple[int, bytes, dict[str, str]]:
    """Encode a reply in the wire format of the requested endpoint."""
    if request.path not in KNOWN_PATHS:
        payload = _error_body(request.path, 404, f"unknown path {request.path}")
        return 404, json.dumps(payload).encode(), {}
    if reply.raw_body is not None:
        return reply.status, reply.raw_body, dict(reply.headers)
    if reply.status != 200:
        payload = _error_body(request.path, reply.status, "scripted error")
        return reply.status, json.dumps(payload).encode(), dict(reply.headers)
    payload = whole_body(request.path, _answer(fake, request, reply))
    return 200, json.dumps(payload).encode(), dict(reply.headers)


def _error_body(path: str, status: int, message: str) -> dict[str, Any]:
    """An error body shaped like the vendor's."""
    kind = "rate_limit_error" if status == 429 else "api_error"
    if path == MESSAGES_PATH:
        return {"type": "error", "error": {"type": kind, "message": message}}
    return {"error": {"message": message, "type": kind, "code": None, "param": None}}


def iter_texts(requests: Iterable[RecordedRequest]) -> Iterator[str]:
    """Every prompt string (system and user) carried by the given requests, in any wire format."""
    for request in requests:
        body = request.body if isinstance(request.body, dict) else {}
        for key in ("system", "instructions", "input"):
            if isinstance(body.get(key), str):
                yield body[key]
        for message in body.get("messages", []):
            if isinstance(message.get("content"), str):
                yield message["content"]


def main() -> None:
    """Serve a fake on 127.0.0.1 until killed (benchmarks run it as a process of its own)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="A loopback fake LLM (every vendor format).")
    parser.add_argument("--tokens", type=int, default=20, help="words in every answer")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds before each")
    args = parser.parse_args()
    text = " ".join(f"word{number}" for number in range(args.tokens))
    with FakeLLMServer(default=Reply(text=text, token_delay=args.token_delay)) as fake:
        print(fake.openai_base_url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin (or kills us)


if __name__ == "__main__":
    main()
