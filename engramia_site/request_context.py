"""Who is acting, under which request id: set by requests, jobs and commands; read by audit."""

from __future__ import annotations

import contextlib
import functools
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

from engramia_site.input_text import InputProblem, form_problem, text_problem
from engramia_site.openai_errors import is_openai_path, openai_error


@dataclass(frozen=True)
class ActingContext:
    """The principal behind the current unit of work."""

    request_id: str
    actor: Any = None  # a User, or None for the system
    api_key_name: str = ""
    remote_addr: str | None = None
    label: str = ""  # names a principal that is not a user, e.g. "cli:alice"
    transport: str = ""  # how the call arrived when not through the API, e.g. "mcp-http"


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
    transport: str = "",
) -> Iterator[ActingContext]:
    """Run a block (a command, a job, an MCP tool call) as actor; every audit entry written
    inside names it (and the transport it came by, when given)."""
    context = ActingContext(
        request_id=request_id or new_request_id(),
        actor=actor,
        api_key_name=api_key_name,
        label=label,
        transport=transport,
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


@contextlib.contextmanager
def resumed(context: ActingContext | None) -> Iterator[ActingContext | None]:
    """Act again as a context captured earlier (a streamed response, after its view returned)."""
    if context is None:
        yield None
        return
    token = _current.set(context)
    try:
        yield context
    finally:
        with contextlib.suppress(ValueError):  # closed from another task: nothing to restore
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
    """The largest body accepted on a path: imports and documents may be large, the rest small."""
    if path.startswith("/v1/import/"):
        return int(settings.MAX_IMPORT_BYTES)
    if path.startswith(("/v1/documents", "/openai/v1/files")):
        return int(settings.MAX_DOCUMENT_BYTES)
    return int(settings.MAX_REQUEST_BYTES)


# A refused body up to this size is still read (and dropped), so that a client which writes its
# whole body before reading the answer gets the 413 rather than a write error. Past it the server
# answers at once and gunicorn closes the connection.
DRAIN_BYTES = 8 * 1024 * 1024
_READ_SIZE = 64 * 1024


def request_too_large(limit: int, path: str = "") -> JsonResponse:
    """The 413 answer, in the API's error format (OpenAI's under /openai/)."""
    message = f"The request body exceeds the limit of {limit} bytes."
    if is_openai_path(path):
        response = JsonResponse(openai_error(413, message), status=413)
        response["Content-Length"] = str(len(response.content))
        return response
    response = JsonResponse(
        {
            "type": "client_error",
            "errors": [
                {
                    "code": "request_too_large",
                    "detail": message,
                    "attr": None,
                }
            ],
        },
        status=413,
    )
    response["Content-Length"] = str(len(response.content))
    return response


def _drain(stream: Any, size: int) -> int:
    """Read and drop up to size bytes of stream; how many were read."""
    read = 0
    while read < size:
        chunk = stream.read(min(_READ_SIZE, size - read))
        if not chunk:
            break
        read += len(chunk)
    return read


def _read_chunked(stream: Any, limit: int) -> tempfile.SpooledTemporaryFile[bytes] | None:
    """A body sent without Content-Length (chunked), read up to limit; None when it is larger."""
    # Handed to the request unclosed: it is dropped (and deleted) with the request.
    body = tempfile.SpooledTemporaryFile(max_size=int(settings.MAX_REQUEST_BYTES))  # noqa: SIM115
    size = 0
    while size <= limit:
        chunk = stream.read(min(_READ_SIZE, limit + 1 - size))
        if not chunk:
            body.seek(0)
            return body
        body.write(chunk)
        size += len(chunk)
    body.close()
    _drain(stream, DRAIN_BYTES - size)
    return None


class RequestSizeLimitMiddleware:
    """Refuse bodies larger than the path's cap (413) before anything parses them.

    A declared Content-Length over the cap is answered without parsing; a chunked body (no
    Content-Length, which Django would read as empty) is read here up to the cap and handed on
    with its length, or refused as soon as it passes the cap.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = _body_limit(request.path)
        if self._refused(request, limit):
            return request_too_large(limit, request.path)
        request.body_limit = limit  # type: ignore[attr-defined]
        return self.get_response(request)

    @staticmethod
    def _refused(request: HttpRequest, limit: int) -> bool:
        stream = request.META.get("wsgi.input")
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not request.META.get("CONTENT_LENGTH") and stream is not None:
            body = _read_chunked(stream, limit)
            if body is None:
                return True
            size = body.seek(0, 2)
            body.seek(0)
            request.META["CONTENT_LENGTH"] = str(size)
            request._stream = LimitedStream(body, size)  # type: ignore[assignment,arg-type]
            return False
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit and length <= DRAIN_BYTES and stream is not None:
            _drain(stream, length)
        return length > limit


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
        if is_openai_path(request.path):
            body = openai_error(400, f"'{problem.attr}': {problem.detail}", code=problem.code)
            body["error"]["param"] = problem.attr
            return JsonResponse(body, status=400)
        if not request.path.startswith("/v1/"):
            return HttpResponseBadRequest(f"{problem.attr}: {problem.detail}")
        error = {"code": problem.code, "detail": problem.detail, "attr": problem.attr}
        return JsonResponse({"type": "validation_error", "errors": [error]}, status=400)


def _path_problem(args: tuple[Any, ...], kwargs: dict[str, Any]) -> InputProblem | None:
    """The first path parameter holding text the database cannot store, by its name."""
    named = [*((f"path.{i}", value) for i, value in enumerate(args)), *kwargs.items()]
    for name, value in named:
        problem = text_problem(value, name) if isinstance(value, str) else None
        if problem:
            return problem
    return None


def _header_problem(request: HttpRequest) -> InputProblem | None:
    """The first header holding U+0000 (a project header is looked up in the database)."""
    for key, value in request.META.items():
        if key.startswith("HTTP_") and isinstance(value, str):
            problem = text_problem(value, key[5:].replace("_", "-").title())
            if problem:
                return problem
    return None
