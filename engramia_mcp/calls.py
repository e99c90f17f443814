"""One MCP call from arguments to answer: checks, the operation, a refusal a model can read, audit.

Runs in a worker thread (the ORM is synchronous). A refusal (a domain error: bad input, a role
too low, nothing found, a dependency down) becomes a tool error whose text says what to change,
in the API's words; anything unexpected is logged and answered as an internal error with the
call's request id. Nothing a caller sends ends the server.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import OperationalError

from engramia_mcp.audit import record_call
from engramia_mcp.principal import Principal
from engramia_mcp.tools import TOOLS_BY_NAME, Tool
from engramia_site.api_errors import api_error_body, from_domain_error
from engramia_site.errors import DependencyUnavailable, DomainError, InvalidInput, NotFound
from engramia_site.input_text import json_problem
from tenants.replica_pinning import routed_call
from tenants.services import require_role

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """What a call returns: a JSON body, or an error in the API's format, and its text."""

    text: str
    body: dict[str, Any]
    is_error: bool = False


def to_json(body: Any) -> tuple[str, Any]:
    """body as JSON text (dates as ISO 8601) and as plain JSON values."""
    text = json.dumps(body, cls=DjangoJSONEncoder, ensure_ascii=False)
    return text, json.loads(text)


# What each of the API's answers means to a model, heading the refusal's text.
HEADLINES = {
    400: "Invalid arguments",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    413: "Too large",
    503: "Unavailable",
}


def refusal(exc: DomainError) -> Answer:
    """A refusal as the model reads it (one line per problem), with the API's error body."""
    api = from_domain_error(exc)
    body = api_error_body(api)
    problems = [
        f"{error['attr']}: {error['detail']}" if error["attr"] else str(error["detail"])
        for error in body["errors"]
    ]
    headline = HEADLINES.get(int(api.status_code), "Refused")
    _, plain = to_json(body)
    return Answer(f"{headline}. " + " ".join(problems), {"error": plain}, is_error=True)


def domain_error(exc: Exception) -> DomainError | None:
    """What the API would answer for exc, as a domain error; None when it is a bug."""
    if isinstance(exc, DomainError):
        return exc
    if isinstance(exc, DjangoValidationError):
        detail = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        return InvalidInput(detail)
    if isinstance(exc, OperationalError):
        logger.exception("database unavailable")
        return DependencyUnavailable("The database is unavailable.")
    return None


def _check_arguments(tool: Tool, arguments: dict[str, Any]) -> None:
    unknown = sorted(set(arguments) - tool.accepted)
    if unknown:
        raise InvalidInput({name: ["Unknown field."] for name in unknown}, code="unknown_field")
    problem = json_problem(arguments)
    if problem:
        raise InvalidInput(
            {problem.attr or "non_field_errors": [problem.detail]}, code=problem.code
        )


def _perform(principal: Principal, tool: Tool, arguments: dict[str, Any]) -> dict[str, Any]:
    _check_arguments(tool, arguments)
    require_role(principal.role, tool.role)
    # Reads may go to a replica unless this caller wrote lately; a write pins it to the primary.
    with routed_call(principal.routing_principal, read_only=tool.read_only):
        return tool.run(principal, arguments)


SERVER_ERROR = "server_error"


def _unexpected(request_id: str) -> Answer:
    logger.exception("MCP call %s failed", request_id)
    detail = f"Internal error; the server logged it under request id {request_id}."
    return Answer(detail, {"error": {"type": SERVER_ERROR, "detail": detail}}, is_error=True)


def _attempt(request_id: str, work: Callable[[], dict[str, Any]]) -> tuple[Answer, str | None]:
    """The answer to work(), and the error code when it was refused or failed."""
    try:
        text, plain = to_json(work())
    except Exception as exc:
        refused = domain_error(exc)
        if refused is None:
            return _unexpected(request_id), SERVER_ERROR
        return refusal(refused), refused.code
    return Answer(text, plain), None


def _outcome(error_code: str | None) -> str:
    if error_code is None:
        return "ok"
    return "error" if error_code == SERVER_ERROR else "refused"


def call_tool(principal: Principal, name: str, arguments: dict[str, Any] | None) -> Answer:
    """Run one tool call as principal, audited (in a worker thread)."""
    arguments = dict(arguments or {})
    tool = TOOLS_BY_NAME.get(name)

    def work() -> dict[str, Any]:
        if tool is None:
            raise NotFound(f"No tool named {name!r}; see tools/list.")
        return _perform(principal, tool, arguments)

    with principal.acting() as context:
        answer, error_code = _attempt(context.request_id, work)
        trace = tool.trace(answer.body) if tool is not None and error_code is None else {}
        record_call(
            principal,
            kind="tool",
            name=name,
            outcome=_outcome(error_code),
            error_code=error_code,
            trace=trace,
        )
    return answer


def read_resource(
    principal: Principal, uri: str, read: Callable[[Principal], dict[str, Any]]
) -> Answer:
    """Read one resource as principal, audited (in a worker thread)."""

    def work() -> dict[str, Any]:
        with routed_call(principal.routing_principal, read_only=True):
            return read(principal)

    with principal.acting() as context:
        answer, error_code = _attempt(context.request_id, work)
        record_call(
            principal,
            kind="resource",
            name=uri,
            outcome=_outcome(error_code),
            error_code=error_code,
        )
    return answer
