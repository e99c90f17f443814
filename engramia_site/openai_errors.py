"""OpenAI's error format, {"error": {"message", "type", "param", "code"}}, for /openai/ paths.

The Assistants-compatible API answers in OpenAI's wire format so the official SDK raises its
own typed errors; middleware that refuses a request before any view runs answers in it too.
Django-free and import-light: the request plumbing uses it.
"""

from __future__ import annotations

from typing import Any

OPENAI_PREFIX = "/openai/"
OPENAI_CODES = {
    401: "invalid_api_key",
    403: "insufficient_permissions",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    429: "rate_limit_exceeded",
    503: "service_unavailable",
}


def is_openai_path(path: str) -> bool:
    """Whether a path belongs to the Assistants-compatible API (OpenAI's error format)."""
    return path.startswith(OPENAI_PREFIX)


def openai_error(
    status: int, message: str, *, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """An error body in OpenAI's format."""
    if status == 429:
        kind = "requests"
    elif status >= 500:
        kind = "server_error"
    else:
        kind = "invalid_request_error"
    return {
        "error": {
            "message": message,
            "type": kind,
            "param": param,
            "code": code if code is not None else OPENAI_CODES.get(status),
        }
    }


def openai_param(attr: str | None) -> str | None:
    """A field path in OpenAI's spelling: tools.0.type -> tools[0].type."""
    if not attr:
        return None
    parts = attr.split(".")
    spelled = parts[0]
    for part in parts[1:]:
        spelled += f"[{part}]" if part.isdigit() else f".{part}"
    return spelled
