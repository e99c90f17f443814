"""Loopback fake of OpenAI's `POST /v1/embeddings` wire format, for tests without network."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def fake_vector(text: str, dimensions: int) -> list[float]:
    """Deterministic pseudo-random vector for a text (not normalised, so callers must)."""
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend((byte - 127.5) / 127.5 for byte in digest)
        counter += 1
    return values[:dimensions]


@dataclass
class RecordedRequest:
    """One request the fake received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeOpenAIEmbeddings:
    """Threaded HTTP server on 127.0.0.1 answering like the OpenAI embeddings endpoint."""

    dimensions: int = 1536
    fail_first: int = 0  # answer this many requests with `fail_status` before succeeding
    fail_status: int = 429
    retry_after: float = 0.01  # seconds, sent as retry-after and retry-after-ms
    requests: list[RecordedRequest] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        """The `base_url` to give the OpenAI client (ends in /v1)."""
        assert self._server is not None, "fake not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        """Requests that reached /v1/embeddings, including the failed ones."""
        return [r for r in self.requests if r.path == "/v1/embeddings"]

    def start(self) -> FakeOpenAIEmbeddings:
        """Bind a free port and serve in a daemon thread."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {"_raw": raw.decode("latin-1")}
                fake._handle(self, body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep pytest output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenAIEmbeddings:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handle(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    path=handler.path,
                    headers={k.lower(): v for k, v in handler.headers.items()},
                    body=body,
                )
            )
            failing = self.fail_first > 0
            if failing:
                self.fail_first -= 1
        if handler.path != "/v1/embeddings":
            self._send(handler, 404, _error("Not found", "invalid_request_error"))
        elif not handler.headers.get("authorization", "").startswith("Bearer "):
            self._send(handler, 401, _error("Missing API key", "invalid_request_error"))
        elif failing:
            headers = {
                "retry-after": f"{self.retry_after:g}",
                "retry-after-ms": f"{self.retry_after * 1000:g}",
            }
            self._send(
                handler, self.fail_status, _error("Rate limit reached", "rate_limit"), headers
            )
        else:
            self._send(handler, 200, self._embeddings(body))

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        dimensions = int(body.get("dimensions") or self.dimensions)
        data = []
        for index, text in enumerate(texts):
            vector = fake_vector(str(text), dimensions)
            if body.get("encoding_format") == "base64":
                encoded: Any = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            else:
                encoded = vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(len(str(t).split()) for t in texts)
        return {
            "object": "list",
            "data": data,
            "model": body.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        payload: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        encoded = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(encoded)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(encoded)


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": kind}}
