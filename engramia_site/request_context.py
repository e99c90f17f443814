"""Who is acting, under which request id: set by requests, jobs and commands; read by audit."""

from __future__ import annotations

import contextlib
import functools
import re
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


@dataclass(frozen=True)
class ActingContext:
    """The principal behind the current unit of work."""

    request_id: str
    actor: Any = None  # a User, or None for the system
    api_key_name: str = ""
    remote_addr: str | None = None
    label: str = ""  # names a principal that is not a user, e.g. "cli:alice"


Params = ParamSpec("Params")
Result = TypeVar("Result")
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


@contextlib.contextmanager
def acting_for(actor: Any) -> Iterator[ActingContext]:
    """Inside a write service: audit entries name `actor`, the service's keyword-only argument.

    A user (or an API key, which acts as its user) is named as such; the request's id, key name
    and address are kept when the surrounding context already acts as that user. None (or any
    principal without a user) means the surrounding principal's label (a command's
    `cli:<name>`, the SDK's `sdk:<name>`, a job's) or the system.
    """
    key_name = ""
    if hasattr(actor, "key_hash") and hasattr(actor, "user"):  # an API key acts as its user
        actor, key_name = actor.user, actor.name
    if getattr(actor, "pk", None) is None:
        actor = None  # no user: a label, the server operator, the system
    context = _current.get()
    if context is None:
        with acting_as(actor, api_key_name=key_name) as fresh:
            yield fresh
        return
    same = getattr(actor, "pk", None) == getattr(context.actor, "pk", None)
    if actor is None or same:
        yield context
        return
    token = _current.set(replace(context, actor=actor, api_key_name=key_name))
    try:
        yield _current.get() or context
    finally:
        _current.reset(token)


def audited(service: Callable[Params, Result]) -> Callable[Params, Result]:
    """Run a write service with the audit context set from its keyword-only `actor`."""

    @functools.wraps(service)
    def write(*args: Params.args, **kwargs: Params.kwargs) -> Result:
        if "actor" not in kwargs:
            raise TypeError(f"{service.__name__}() needs the keyword-only argument 'actor'")
        with acting_for(kwargs["actor"]):
            return service(*args, **kwargs)

    return write


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
