"""Loopback fake of the OpenAI Assistants API wire format, for exporter tests."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_KEY = "sk-fake-assistants"
BASE_TIME = 1_700_000_000

GONE_BODY_MESSAGE = (
    "The Assistants API has been shut down as of 2026-08-26. "
    "Migrate to the Responses API: https://platform.openai.com/docs/assistants/migration"
)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received; status is None when it dropped the connection instead."""

    method: str
    path: str
    query: dict[str, str]
    status: int | None
    at: float


@dataclass(frozen=True)
class _PlannedFailure:
    """A failure served once for a thread or for the assistants list."""

    status: int
    retry_after_ms: int | None


def text_part(value: str) -> dict[str, Any]:
    """Return a text content part as the API sent it."""
    return {"type": "text", "text": {"value": value, "annotations": []}}


def image_file_part(file_id: str) -> dict[str, Any]:
    """Return an image_file content part as the API sent it."""
    return {"type": "image_file", "image_file": {"file_id": file_id, "detail": "auto"}}


def make_message(
    thread_id: str,
    number: int,
    *,
    role: str = "user",
    text: str | None = None,
    parts: list[dict[str, Any]] | None = None,
    assistant_id: str | None = None,
    run_id: str | None = None,
    attachments: list[dict[str, Any]] | None = None,
    created_at: int | None = None,
) -> dict[str, Any]:
    """Return a thread.message object shaped exactly like the Assistants API v2 returned it."""
    if parts is None:
        parts = [text_part(text if text is not None else f"{role} message {number}")]
    return {
        "id": f"msg_{thread_id}_{number:04d}",
        "object": "thread.message",
        "created_at": BASE_TIME + number if created_at is None else created_at,
        "assistant_id": assistant_id,
        "thread_id": thread_id,
        "run_id": run_id,
        "role": role,
        "content": parts,
        "attachments": attachments or [],
        "metadata": {},
        "status": "completed",
        "incomplete_details": None,
        "completed_at": None,
        "incomplete_at": None,
    }


def make_conversation(
    thread_id: str, count: int, *, assistant_id: str = "asst_fake"
) -> list[dict[str, Any]]:
    """Return `count` messages alternating user and assistant, oldest first."""
    messages = []
    for number in range(count):
        if number % 2 == 0:
            messages.append(make_message(thread_id, number, role="user"))
        else:
            messages.append(
                make_message(
                    thread_id,
                    number,
                    role="assistant",
                    assistant_id=assistant_id,
                    run_id=f"run_{thread_id}_{number // 2:04d}",
                )
            )
    return messages


def make_assistant(
    assistant_id: str,
    *,
    name: str | None = "Helper",
    instructions: str | None = "Be helpful.",
    model: str = "gpt-4o",
    tools: list[dict[str, Any]] | None = None,
    tool_resources: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
    created_at: int = BASE_TIME,
) -> dict[str, Any]:
    """Return an assistant object shaped like the Assistants API v2 returned it."""
    return {
        "id": assistant_id,
        "object": "assistant",
        "created_at": created_at,
        "name": name,
        "description": None,
        "model": model,
        "instructions": instructions,
        "tools": tools or [],
        "tool_resources": tool_resources or {},
        "metadata": metadata or {},
        "top_p": 1.0,
        "temperature": 1.0,
        "response_format": "auto",
    }


Reply = tuple[int, dict[str, Any], dict[str, str]]


def error_reply(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """Return an error response in the API's `{"error": {...}}` shape."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return status, body, headers or {}


class FakeAssistantsApi:
    """An Assistants API on 127.0.0.1 with configurable failures and a request log."""

    def __init__(self, *, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.threads: dict[str, list[dict[str, Any]]] = {}
        self.assistants: list[dict[str, Any]] = []
        self.everything_gone = False
        self._thread_status: dict[str, int] = {}
        self._planned: dict[str, list[_PlannedFailure]] = {}
        self._fail_after: int | None = None
        self._served = 0
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Setup.

    def add_thread(self, thread_id: str, messages: list[dict[str, Any]]) -> None:
        """Serve `messages` (oldest first) for `thread_id`."""
        self.threads[thread_id] = list(messages)

    def add_assistant(self, assistant: dict[str, Any]) -> None:
        """Serve `assistant` in the assistants list."""
        self.assistants.append(assistant)

    def set_thread_status(self, thread_id: str, status: int) -> None:
        """Answer every request for `thread_id` with 404 or 410."""
        if status not in (404, 410):
            raise ValueError("thread status must be 404 or 410")
        self._thread_status[thread_id] = status

    def fail_once(self, target: str, status: int, *, retry_after_ms: int | None = None) -> None:
        """Answer the next request for `target` (a thread id or "assistants") with `status`."""
        with self._lock:
            self._planned.setdefault(target, []).append(_PlannedFailure(status, retry_after_ms))

    def fail_after(self, count: int | None) -> None:
        """Drop the connection of every request after the next `count`, or stop doing so."""
        with self._lock:
            self._fail_after = None if count is None else self._served + count

    # Introspection.

    @property
    def base_url(self) -> str:
        """Return the base URL to give the OpenAI client."""
        if self._server is None:
            raise RuntimeError("the fake is not running")
        return f"http://127.0.0.1:{self._server.server_port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Return a copy of the request log."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, thread_id: str) -> list[RecordedRequest]:
        """Return the logged requests for one thread's messages."""
        return [r for r in self.requests if r.path == f"/v1/threads/{thread_id}/messages"]

    def clear_requests(self) -> None:
        """Forget the request log."""
        with self._lock:
            self._requests.clear()

    # Lifecycle.

    def start(self) -> FakeAssistantsApi:
        """Start serving on 127.0.0.1 at a free port."""
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        # A short poll interval keeps shutdown() from costing half a second per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeAssistantsApi:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Request handling, called from the server threads.

    def _admit(self) -> bool:
        """Count a request and say whether it should be answered at all."""
        with self._lock:
            self._served += 1
            return self._fail_after is None or self._served <= self._fail_after

    def _take_planned(self, target: str) -> _PlannedFailure | None:
        with self._lock:
            planned = self._planned.get(target)
            return planned.pop(0) if planned else None

    def _record(self, method: str, path: str, query: dict[str, str], status: int | None) -> None:
        with self._lock:
            self._requests.append(RecordedRequest(method, path, query, status, time.monotonic()))

    def _respond(self, path: str, query: dict[str, str], headers: dict[str, str]) -> Reply:
        """Return status, JSON body and extra headers for one GET."""
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return error_reply(401, "Incorrect API key provided.", code="invalid_api_key")
        if self.everything_gone:
            return error_reply(410, GONE_BODY_MESSAGE, code="gone")
        parts = path.strip("/").split("/")
        if parts == ["v1", "assistants"]:
            target, items = "assistants", self.assistants
        elif len(parts) == 4 and parts[:2] == ["v1", "threads"] and parts[3] == "messages":
            target, items = parts[2], self.threads.get(parts[2], [])
        else:
            return error_reply(404, f"Invalid URL (GET {path})")
        if headers.get("openai-beta") != "assistants=v2":
            return error_reply(
                400,
                "You must provide the 'OpenAI-Beta' header to access the Assistants API. "
                "Please try again by setting the header 'OpenAI-Beta: assistants=v2'.",
                code="invalid_beta",
            )
        planned = self._take_planned(target)
        if planned is not None:
            return _planned_response(planned)
        if target != "assistants":
            status = self._thread_status.get(target, 200 if target in self.threads else 404)
            if status == 404:
                return error_reply(404, f"No thread found with id '{target}'.")
            if status == 410:
                return error_reply(410, GONE_BODY_MESSAGE, code="gone")
        return _page(items, query)


def _planned_response(planned: _PlannedFailure) -> Reply:
    """Return the response for a planned one-shot failure."""
    headers: dict[str, str] = {}
    if planned.retry_after_ms is not None:
        headers["retry-after-ms"] = str(planned.retry_after_ms)
        headers["retry-after"] = str(planned.retry_after_ms // 1000)
    if planned.status == 429:
        return error_reply(
            429,
            "Rate limit reached for requests. Please try again shortly.",
            type_="requests",
            code="rate_limit_exceeded",
            headers=headers,
        )
    if planned.status >= 500:
        return error_reply(
            planned.status,
            "The server had an error while processing your request. Sorry about that!",
            type_="server_error",
            headers=headers,
        )
    return error_reply(planned.status, f"Planned failure {planned.status}.", headers=headers)


def _page(items: list[dict[str, Any]], query: dict[str, str]) -> Reply:
    """Return one cursor page of `items` the way the API paginated lists."""
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        return error_reply(400, "Invalid 'limit'.", param="limit")
    if not 1 <= limit <= 100:
        return error_reply(
            400,
            f"Invalid 'limit': expected a value between 1 and 100, but got {limit} instead.",
            code="integer_out_of_range",
            param="limit",
        )
    ordered = sorted(items, key=lambda item: item["created_at"])
    if query.get("order", "desc") == "desc":
        ordered.reverse()
    start = 0
    if "after" in query:
        ids = [item["id"] for item in ordered]
        if query["after"] not in ids:
            return error_reply(
                400, f"Invalid 'after': no object with id '{query['after']}'.", param="after"
            )
        start = ids.index(query["after"]) + 1
    data = ordered[start : start + limit]
    body = {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": start + limit < len(ordered),
    }
    return 200, body, {}


class _Handler(BaseHTTPRequestHandler):
    """Serves GETs for the fake; `api` is set on a per-server subclass."""

    api: FakeAssistantsApi
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        """Answer one GET, or drop the connection once the fake has been told to fail."""
        split = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(split.query).items()}
        if not self.api._admit():
            self.api._record("GET", split.path, query, None)
            # Closing without a response looks like a crashed server to the client.
            self.close_connection = True
            return
        headers = {key.lower(): value for key, value in self.headers.items()}
        status, body, extra_headers = self.api._respond(split.path, query, headers)
        self.api._record("GET", split.path, query, status)
        payload = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in extra_headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""
