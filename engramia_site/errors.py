"""Domain errors: what services refuse, said in the terms of the request rather than of HTTP.

Services and operations raise these; one exception handler turns them into API responses
(`engramia_site.api_errors`), the job runner into job outcomes (`jobs.runner`), and the SDK's
local mode into its typed errors (`engramia.local`). Nothing below the API raises an HTTP
exception. Plain Python, so Django-free code (providers) can raise them too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class DomainError(Exception):
    """Base of every refusal a caller can act on; the message is meant for the caller."""

    code = "error"
    # Prefixed to the message where the error is shown (e.g. "The embedding provider failed").
    prefix = ""

    def __init__(
        self, message: str = "", *, code: str | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.field = field  # the input the refusal is about, when it is about one

    @property
    def public_message(self) -> str:
        """The message as callers see it."""
        text = str(self)
        return f"{self.prefix}: {text}" if self.prefix and text else (text or self.prefix)


class InvalidInput(DomainError):
    """Input that breaks a rule: `errors` maps each field to its messages (DRF's shape).

    `InvalidInput("too long", field="text")` names one field; `InvalidInput({"a": [...]})`
    carries a serializer's whole error detail (codes kept).
    """

    code = "invalid"

    def __init__(
        self,
        errors: Mapping[str, Any] | str,
        *,
        field: str | None = None,
        code: str | None = None,
    ) -> None:
        if isinstance(errors, str):
            message = errors
            errors = {field or "non_field_errors": [message]}
        else:
            message = "; ".join(f"{name}: {_first(value)}" for name, value in errors.items())
        super().__init__(message, code=code, field=field)
        self.errors: dict[str, Any] = dict(errors)


def _first(value: Any) -> str:
    while isinstance(value, list | tuple) and value:
        value = value[0]
    if isinstance(value, Mapping) and value:
        return _first(next(iter(value.values())))
    return str(value)


class NotFound(DomainError):
    """The object does not exist, or is not visible to the caller (the same answer)."""

    code = "not_found"


class PermissionDenied(DomainError):
    """The caller sees the object but its role does not allow this."""

    code = "permission_denied"


class Conflict(DomainError):
    """The request conflicts with the current state (a name taken, a job already running)."""

    code = "conflict"


class TooLarge(DomainError):
    """The input exceeds a size limit."""

    code = "request_too_large"


class DependencyUnavailable(DomainError):
    """A dependency (embedding provider, LLM, database) failed; trying again later may work."""

    code = "service_unavailable"


class NotConfigured(DependencyUnavailable):
    """A dependency this request needs is not configured here; retrying will not help."""


__all__ = [
    "Conflict",
    "DependencyUnavailable",
    "DomainError",
    "InvalidInput",
    "NotConfigured",
    "NotFound",
    "PermissionDenied",
    "TooLarge",
]
