"""Remote mode: the REST API over httpx, with typed errors and bounded retries (Django-free)."""

from __future__ import annotations

import asyncio
import email.utils
import random
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from engramia import __version__
from engramia.config import RemoteSettings
from engramia.errors import (
    EngramiaAPIError,
    EngramiaConfigError,
    EngramiaConnectionError,
    EngramiaJudgeNotConfiguredError,
    EngramiaTimeoutError,
    error_for_status,
    validation_error,
)
from engramia.types import EvalResult, FeedbackItem, LearnResult, Match

PROJECT_HEADER = "X-Engramia-Project"
RETRY_STATUSES = (429, 503)
BACKOFF_BASE_SECONDS = 0.5
# The server's largest page of session items, and the largest `limit` either mode accepts
# (conversations.services.MAX_PAGE and MAX_LIMIT).
SESSION_PAGE_MAX = 1000
SESSION_LIMIT_MAX = 10_000


@dataclass(frozen=True)
class _Route:
    """One operation as an HTTP request, and how its answer becomes a result."""

    method: str
    path: str
    parse: Callable[[Any], Any]
    json: dict[str, Any] | None = None
    params: dict[str, Any] | None = None


def _route(operation: str, payload: dict[str, Any]) -> _Route:
    if operation == "learn":
        return _Route("POST", "/v1/learn", LearnResult.from_api, json=payload)
    if operation == "recall":
        return _Route(
            "POST",
            "/v1/recall",
            lambda body: [Match.from_api(match) for match in body["matches"]],
            json=payload,
        )
    if operation == "evaluate":
        return _Route("POST", "/v1/evaluate", EvalResult.from_api, json=payload)
    if operation == "feedback":
        return _Route(
            "GET",
            "/v1/feedback",
            lambda body: [FeedbackItem.from_api(item) for item in body["feedback"]],
            params=payload,
        )
    if operation == "delete_pattern":
        return _Route("DELETE", f"/v1/patterns/{int(payload['pattern_id'])}", lambda body: None)
    if operation == "record_outcome":
        return _Route("POST", "/v1/outcomes", lambda body: int(body["credited"]), json=payload)
    if operation == "project":
        return _Route("GET", "/v1/project", dict)
    if operation.startswith("session_"):
        return _session_route(operation, payload)
    raise EngramiaConfigError(
        f"{operation} is available in local mode only (this Memory talks to a server)"
    )


def _session_path(session_id: Any) -> str:
    """/v1/sessions/<id>, the id percent-encoded whole ('/' as %2F; '.' and '..' as %2E)."""
    if not isinstance(session_id, str):
        raise validation_error("session_id", "Not a valid string.")
    encoded = quote(session_id, safe="")
    if encoded in (".", ".."):  # HTTP clients resolve dot segments away
        encoded = encoded.replace(".", "%2E")
    return f"/v1/sessions/{encoded}"


def _session_route(operation: str, payload: dict[str, Any]) -> _Route:
    """The session operations (engramia.sdk.EngramiaSession) on the /v1/sessions endpoints."""
    base = _session_path(payload.get("session_id"))
    if operation == "session_add":
        return _Route(
            "POST",
            f"{base}/items",
            lambda body: int(body["added"]),
            json={"items": payload.get("items")},
        )
    if operation == "session_pop":
        return _Route("POST", f"{base}/pop", lambda body: body["item"])
    if operation == "session_clear":
        return _Route("DELETE", base, lambda body: int(body["removed"]))
    raise EngramiaConfigError(f"unknown operation {operation!r}")


@dataclass
class _SessionRead:
    """A session's latest `wanted` items (None: all), read a page at a time, newest page first.

    The server answers at most SESSION_PAGE_MAX items per request and a `next_before` cursor
    for the older ones; the cursor is a position, so appends during the read do not shift it.
    """

    base: str
    wanted: int | None
    pages: list[list[Any]] = field(default_factory=list)
    count: int = 0
    before: int | None = None
    done: bool = False

    @classmethod
    def start(cls, payload: dict[str, Any]) -> _SessionRead:
        limit = payload.get("limit")
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int):
                raise validation_error("limit", "A valid integer is required.")
            if limit > SESSION_LIMIT_MAX:
                raise validation_error(
                    "limit",
                    f"Ensure this value is less than or equal to {SESSION_LIMIT_MAX}.",
                    "max_value",
                )
        return cls(base=_session_path(payload.get("session_id")), wanted=limit)

    def next_route(self) -> _Route:
        size = SESSION_PAGE_MAX
        if self.wanted is not None:
            size = min(size, self.wanted - self.count)
        params: dict[str, Any] = {"limit": size}
        if self.before is not None:
            params["before"] = self.before
        return _Route("GET", f"{self.base}/items", dict, params=params)

    def take(self, body: dict[str, Any]) -> None:
        items = list(body["items"])
        self.pages.append(items)
        self.count += len(items)
        self.before = body.get("next_before")  # absent from servers that do not page
        full = self.wanted is not None and self.count >= self.wanted
        self.done = full or not items or not isinstance(self.before, int)

    def items(self) -> list[Any]:
        return [item for page in reversed(self.pages) for item in page]


def _retry_after_seconds(response: httpx.Response) -> float | None:
    """The server's Retry-After, in seconds (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


class RemoteBackend:
    """Calls the Engramia REST API; sync through one httpx.Client, async through one per loop."""

    mode = "remote"

    def __init__(
        self,
        settings: RemoteSettings,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_retry_wait: float = 30.0,
    ) -> None:
        self.settings = settings
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.max_retry_wait = max(0.0, float(max_retry_wait))
        self._client: httpx.Client | None = None
        self._async_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, httpx.AsyncClient
        ] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"remote {self.settings.api_url}"

    # -- clients ---------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.settings.api_key}",
            "Accept": "application/json",
            "User-Agent": f"engramia-python/{__version__}",
        }
        if self.settings.project:
            headers[PROJECT_HEADER] = self.settings.project
        return headers

    def _sync_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    base_url=self.settings.api_url, headers=self._headers(), timeout=self.timeout
                )
            return self._client

    def _async_client(self) -> httpx.AsyncClient:
        # An async connection pool belongs to the loop that opened it: one client per loop.
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async_clients.get(loop)
            if client is None or client.is_closed:
                client = httpx.AsyncClient(
                    base_url=self.settings.api_url, headers=self._headers(), timeout=self.timeout
                )
                self._async_clients[loop] = client
            return client

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async_clients.pop(loop, None)
        if client is not None:
            await client.aclose()
        self.close()

    # -- calls -----------------------------------------------------------------------------

    def call(self, operation: str, payload: dict[str, Any]) -> Any:
        if operation == "session_get":
            read = _SessionRead.start(payload)
            while not read.done:
                read.take(self._send(operation, read.next_route()))
            return read.items()
        return self._send(operation, _route(operation, payload))

    async def acall(self, operation: str, payload: dict[str, Any]) -> Any:
        if operation == "session_get":
            read = _SessionRead.start(payload)
            while not read.done:
                read.take(await self._asend(operation, read.next_route()))
            return read.items()
        return await self._asend(operation, _route(operation, payload))

    def _send(self, operation: str, route: _Route) -> Any:
        client = self._sync_client()
        attempt = 0
        while True:
            try:
                response = client.request(
                    route.method, route.path, json=route.json, params=route.params
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # The request never reached the server, so repeating it is safe.
                if attempt < self.max_retries:
                    time.sleep(self._backoff(attempt))
                    attempt += 1
                    continue
                raise self._connection_error(operation, exc) from exc
            except httpx.HTTPError as exc:
                raise self._connection_error(operation, exc) from exc
            delay = self._retry_delay(response, attempt)
            if delay is None:
                return self._result(operation, route, response)
            time.sleep(delay)
            attempt += 1

    async def _asend(self, operation: str, route: _Route) -> Any:
        client = self._async_client()
        attempt = 0
        while True:
            try:
                response = await client.request(
                    route.method, route.path, json=route.json, params=route.params
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt < self.max_retries:
                    await asyncio.sleep(self._backoff(attempt))
                    attempt += 1
                    continue
                raise self._connection_error(operation, exc) from exc
            except httpx.HTTPError as exc:
                raise self._connection_error(operation, exc) from exc
            delay = self._retry_delay(response, attempt)
            if delay is None:
                return self._result(operation, route, response)
            await asyncio.sleep(delay)
            attempt += 1

    # -- helpers ---------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        return min(self.max_retry_wait, BACKOFF_BASE_SECONDS * 2**attempt) * (
            0.5 + random.random() / 2
        )

    def _retry_delay(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying this answer, or None to stop and report it."""
        if response.status_code not in RETRY_STATUSES or attempt >= self.max_retries:
            return None
        retry_after = _retry_after_seconds(response)
        if retry_after is not None and retry_after > self.max_retry_wait:
            return None  # longer than we are willing to wait: report it with retry_after
        if response.status_code == 503 and retry_after is None:
            error = self._error("", response)
            if isinstance(error, EngramiaJudgeNotConfiguredError):
                return None  # configuration, not a blip: retrying cannot help
        return retry_after if retry_after is not None else self._backoff(attempt)

    def _result(self, operation: str, route: _Route, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise self._error(operation, response)
        if response.status_code == 204 or not response.content:
            return route.parse(None)
        try:
            body = response.json()
        except ValueError as exc:
            raise EngramiaAPIError(
                f"{operation}: the server answered HTTP {response.status_code} with non-JSON",
                status=response.status_code,
                type="invalid_response",
                request_id=response.headers.get("x-request-id"),
            ) from exc
        return route.parse(body)

    def _error(self, operation: str, response: httpx.Response) -> EngramiaAPIError:
        try:
            body = response.json()
        except ValueError:
            body = None
        errors: list[dict[str, Any]] = []
        error_type = None
        if isinstance(body, dict):
            error_type = body.get("type") if isinstance(body.get("type"), str) else None
            raw = body.get("errors")
            if isinstance(raw, list):
                errors = [item for item in raw if isinstance(item, dict)]
        if not errors:
            text = response.text.strip()[:300] or response.reason_phrase
            errors = [{"code": "error", "detail": text, "attr": None}]
        return error_for_status(
            response.status_code,
            type=error_type,
            errors=errors,
            retry_after=_retry_after_seconds(response),
            request_id=response.headers.get("x-request-id"),
            operation=operation,
        )

    def _connection_error(self, operation: str, exc: httpx.HTTPError) -> EngramiaConnectionError:
        where = self.settings.api_url
        if isinstance(exc, httpx.TimeoutException):
            return EngramiaTimeoutError(
                f"{operation}: {where} did not answer within {self.timeout:g}s "
                f"({type(exc).__name__})"
            )
        return EngramiaConnectionError(f"{operation}: cannot reach {where}: {exc}")
