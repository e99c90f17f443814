"""The SDK's exceptions (Django-free): one hierarchy for local and remote mode alike.

API errors carry the REST contract's shape (`status`, `type`, `errors` of `{code, detail, attr}`);
local mode raises the same classes with the status the API would have answered, so
`except EngramiaNotFoundError` works whichever mode a `Memory` runs in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "EngramiaAPIError",
    "EngramiaAuthenticationError",
    "EngramiaConfigError",
    "EngramiaConflictError",
    "EngramiaConnectionError",
    "EngramiaError",
    "EngramiaJudgeNotConfiguredError",
    "EngramiaNotFoundError",
    "EngramiaPayloadTooLargeError",
    "EngramiaPermissionError",
    "EngramiaRateLimitError",
    "EngramiaServerError",
    "EngramiaServiceUnavailableError",
    "EngramiaTimeoutError",
    "EngramiaValidationError",
    "error_for_status",
]


class EngramiaError(Exception):
    """Base of every error the SDK raises."""


class EngramiaConfigError(EngramiaError):
    """The SDK is configured in a way it cannot work with (scope, URL, key, database)."""


class EngramiaConnectionError(EngramiaError):
    """The Engramia server could not be reached (after the bounded retries)."""


class EngramiaTimeoutError(EngramiaConnectionError):
    """The Engramia server did not answer in time."""


class EngramiaAPIError(EngramiaError):
    """An error answer of the API (or its local-mode equivalent)."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        type: str = "client_error",
        errors: Sequence[Mapping[str, Any]] = (),
        retry_after: float | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.errors: list[dict[str, Any]] = [dict(error) for error in errors]
        self.retry_after = retry_after
        self.request_id = request_id

    @property
    def detail(self) -> str:
        """The first error's human-readable detail."""
        return str(self.errors[0].get("detail", "")) if self.errors else str(self)

    def errors_for(self, attr: str) -> list[dict[str, Any]]:
        """The errors about one input field."""
        return [error for error in self.errors if error.get("attr") == attr]


class EngramiaValidationError(EngramiaAPIError):
    """400: invalid input (`errors` says which field and why)."""


class EngramiaAuthenticationError(EngramiaAPIError):
    """401: missing, unknown, expired or revoked API key."""


class EngramiaPermissionError(EngramiaAPIError):
    """403: the key's role is too low for this operation."""


class EngramiaNotFoundError(EngramiaAPIError):
    """404: absent, or not visible to this key."""


class EngramiaConflictError(EngramiaAPIError):
    """409: the request conflicts with the current state."""


class EngramiaPayloadTooLargeError(EngramiaAPIError):
    """413: the request is larger than the server accepts."""


class EngramiaRateLimitError(EngramiaAPIError):
    """429: throttled; `retry_after` says for how long (seconds), when the server said."""


class EngramiaServiceUnavailableError(EngramiaAPIError):
    """503: a dependency (database, embedder, LLM judge) is down or not configured."""


class EngramiaJudgeNotConfiguredError(EngramiaServiceUnavailableError):
    """503: evaluation needs an LLM judge and none is configured (ENGRAMIA_LLM)."""


class EngramiaServerError(EngramiaAPIError):
    """5xx other than 503: a server bug (see the server log under `request_id`)."""


_BY_STATUS: dict[int, type[EngramiaAPIError]] = {
    400: EngramiaValidationError,
    401: EngramiaAuthenticationError,
    403: EngramiaPermissionError,
    404: EngramiaNotFoundError,
    409: EngramiaConflictError,
    413: EngramiaPayloadTooLargeError,
    429: EngramiaRateLimitError,
    503: EngramiaServiceUnavailableError,
}

# The API's 503 for a missing judge is recognised by its message (it has no code of its own).
_JUDGE_NOT_CONFIGURED_MARKER = "no llm judge is configured"


def error_for_status(
    status: int,
    *,
    type: str | None = None,
    errors: Sequence[Mapping[str, Any]] = (),
    retry_after: float | None = None,
    request_id: str | None = None,
    operation: str = "",
) -> EngramiaAPIError:
    """The typed exception for an API error answer."""
    error_class = _BY_STATUS.get(status)
    if error_class is None:
        error_class = EngramiaServerError if status >= 500 else EngramiaAPIError
    details = "; ".join(
        f"{error.get('attr')}: {error.get('detail')}"
        if error.get("attr")
        else str(error.get("detail"))
        for error in errors
    )
    if error_class is EngramiaServiceUnavailableError and _JUDGE_NOT_CONFIGURED_MARKER in (
        details.lower()
    ):
        error_class = EngramiaJudgeNotConfiguredError
    prefix = f"{operation}: " if operation else ""
    message = f"{prefix}HTTP {status}" + (f": {details}" if details else "")
    return error_class(
        message,
        status=status,
        type=type
        or (
            "validation_error"
            if status == 400
            else "server_error"
            if status >= 500
            else "client_error"
        ),
        errors=errors,
        retry_after=retry_after,
        request_id=request_id,
    )


def validation_error(
    attr: str | None, detail: str, code: str = "invalid"
) -> EngramiaValidationError:
    """A local-mode 400 shaped like the API's."""
    where = f"{attr}: " if attr else ""
    return EngramiaValidationError(
        f"HTTP 400: {where}{detail}",
        status=400,
        type="validation_error",
        errors=[{"code": code, "detail": detail, "attr": attr}],
    )
