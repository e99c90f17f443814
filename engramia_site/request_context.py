"""Who is acting, under which request id: set by requests, jobs and commands; read by audit."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

from engramia_site.input_text import (
    INVALID_CHARACTERS,
    InputProblem,
    character_problem,
    form_problem,
)


@dataclass(frozen=True)
class ActingContext:
    """The principal behind the current unit of work."""

    request_id: str
    actor: Any = None  # a User, or None for the system
    api_key_name: str = ""
    remote_addr: str | None = None
    label: str = ""  # names a principal that is not a user, e.g. "cli:alice"


_current: ContextVar[ActingContext | None] = ContextVar("engramia_acting", default=None)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def new_request_id() -> str:
    """A fresh opaque request id."""
    return uuid.uuid4().hex


def current_context() -> ActingContext | None:
    """The acting context of this thread or task, if any."""
    return _current.get()


def current_request_id() -> str | None:
    """The request id of the current unit of work (auditlog's correlation id getter)."""
    context = _current.get()
    return context.request_id if context else None


@contextlib.contextmanager
def acting_as(
    actor: Any = None,
    *,
    api_key_name: str = "",
    request_id: str | None = None,
    label: str = "",
) -> Iterator[ActingContext]:
    """Run a block (a command, a job) as actor; every audit entry written inside names it."""
    context = ActingContext(
        request_id=request_id or new_request_id(),
        actor=actor,
        api_key_name=api_key_name,
        label=label,
    )
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def set_request_actor(actor: Any, api_key_name: str = "") -> None:
    """Name the authenticated principal of the current request (API key auth runs late)."""
    context = _current.get()
    if context is not None:
        _current.set(replace(context, actor=actor, api_key_name=api_key_name))


class RequestContextMiddleware:
    """Give every request an id (X-Request-ID, echoed back) and an acting context."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else new_request_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        token = _current.set(
            ActingContext(request_id=request_id, remote_addr=request.META.get("REMOTE_ADDR"))
        )
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        response["X-Request-ID"] = request_id
        return response


class SessionActorMiddleware:
    """Record the logged-in admin user as the actor of the request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            set_request_actor(user)
        return self.get_response(request)


def _body_limit(path: str) -> int:
    """The largest body accepted on a path: imports may be large, everything else is small."""
    if path.startswith(("/v1/import/", "/v1/documents")):
        return int(settings.MAX_IMPORT_BYTES)
    return int(settings.MAX_REQUEST_BYTES)


def request_too_large(limit: int) -> JsonResponse:
    """The 413 answer, in the API's error format."""
    return JsonResponse(
        {
            "type": "client_error",
            "errors": [
                {
                    "code": "request_too_large",
                    "detail": f"The request body exceeds the limit of {limit} bytes.",
                    "attr": None,
                }
            ],
        },
        status=413,
    )


class RequestSizeLimitMiddleware:
    """Refuse bodies larger than the configured cap before anything reads them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = _body_limit(request.path)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            return request_too_large(limit)
        request.body_limit = limit  # type: ignore[attr-defined]
        return self.get_response(request)


class RequestTextMiddleware:
    """Refuse query, path and header values the database cannot store: a 400 naming them.

    JSON and multipart bodies are checked by the API's parsers (engramia_site.parsers); this is
    the same check for what the URL and headers carry, before any view or lookup sees them.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> HttpResponse | None:
        problem = (
            form_problem(request.GET) or _path_problem(args, kwargs) or _header_problem(request)
        )
        if problem is None:
            return None
        if not request.path.startswith("/v1/"):
            return HttpResponseBadRequest(f"{problem.attr}: {problem.detail}")
        error = {"code": problem.code, "detail": problem.detail, "attr": problem.attr}
        return JsonResponse({"type": "validation_error", "errors": [error]}, status=400)


def _path_problem(args: tuple[Any, ...], kwargs: dict[str, Any]) -> InputProblem | None:
    """The first path parameter holding text the database cannot store, by its name."""
    named = [*((f"path.{i}", value) for i, value in enumerate(args)), *kwargs.items()]
    for name, value in named:
        problem = character_problem(value) if isinstance(value, str) else None
        if problem:
            return InputProblem(name, problem, INVALID_CHARACTERS)
    return None


def _header_problem(request: HttpRequest) -> InputProblem | None:
    """The first header holding U+0000 (a project header is looked up in the database)."""
    for key, value in request.META.items():
        is_header = key.startswith("HTTP_") and isinstance(value, str)
        problem = character_problem(value) if is_header else None
        if problem:
            name = key[5:].replace("_", "-").title()
            return InputProblem(name, problem, INVALID_CHARACTERS)
    return None
