"""The API's error formats: /v1's {"type", "errors": [{"code", "detail", "attr"}]}, and
OpenAI's {"error": {"message", "type", "param", "code"}} for the Assistants-compatible API under
/openai/ (its wire format, so the official SDK raises its own typed errors)."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from engramia_site import errors as domain
from engramia_site.openai_errors import OPENAI_CODES, openai_error, openai_param

logger = logging.getLogger(__name__)


class ServiceUnavailable(exceptions.APIException):
    """A dependency (LLM provider, database, embedder) is down or not configured."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "A service this request needs is unavailable."
    default_code = "service_unavailable"


class Conflict(exceptions.APIException):
    """The request conflicts with the current state."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class FieldConflict(exceptions.ValidationError):
    """409 about one input (e.g. a session already full): the error names the field."""

    status_code = status.HTTP_409_CONFLICT


class PayloadTooLarge(exceptions.APIException):
    """The body or one of its fields exceeds a size limit."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request is too large."
    default_code = "request_too_large"


def _flatten(detail: Any, attr: str | None = None) -> list[dict[str, Any]]:
    """Turn DRF's nested error detail into a flat list of {code, detail, attr}."""
    if isinstance(detail, dict):
        errors: list[dict[str, Any]] = []
        for key, value in detail.items():
            name = None if key in ("non_field_errors", "detail") else str(key)
            errors.extend(_flatten(value, f"{attr}.{name}" if attr and name else (name or attr)))
        return errors
    if isinstance(detail, list):
        errors = []
        for index, value in enumerate(detail):
            nested = isinstance(value, dict | list)
            errors.extend(_flatten(value, f"{attr}.{index}" if nested and attr else attr))
        return errors
    code = getattr(detail, "code", None) or "invalid"
    return [{"code": code, "detail": str(detail), "attr": attr}]


def _error_type(status_code: int) -> str:
    if status_code == 400:
        return "validation_error"
    if status_code >= 500:
        return "server_error"
    return "client_error"


def from_domain_error(exc: domain.DomainError) -> exceptions.APIException:
    """The API's answer to a service's refusal (the one place the mapping is written)."""
    message = exc.public_message
    if isinstance(exc, domain.InvalidInput):
        return exceptions.ValidationError(exc.errors, code=exc.code)
    if isinstance(exc, domain.NotFound):
        return exceptions.NotFound(message or None)
    if isinstance(exc, domain.PermissionDenied):
        return exceptions.PermissionDenied(message or None)
    if isinstance(exc, domain.Conflict):
        if exc.field:
            return FieldConflict({exc.field: [message]}, code=exc.code)
        return Conflict(message or None)
    if isinstance(exc, domain.TooLarge):
        return PayloadTooLarge(message or None)
    if isinstance(exc, domain.DependencyUnavailable):
        return ServiceUnavailable(message or None)
    return exceptions.ValidationError({"non_field_errors": [message]}, code=exc.code)


def as_api_exception(exc: Exception) -> Exception:
    """A domain or Django error as the DRF exception the API answers with (others unchanged)."""
    if isinstance(exc, domain.DomainError):
        exc = from_domain_error(exc)
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, SuspiciousOperation):
        exc = exceptions.ParseError(str(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, OperationalError):
        logger.exception("database unavailable")
        exc = ServiceUnavailable("The database is unavailable.")
    return exc


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler producing the contract's error format."""
    exc = as_api_exception(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    assert isinstance(exc, exceptions.APIException)
    response.data = api_error_body(exc, response.status_code)
    return response


def api_error_body(exc: exceptions.APIException, status_code: int | None = None) -> dict[str, Any]:
    """The contract's error body for an API exception: {"type", "errors": [...]}."""
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
    else:
        errors = [
            {
                "code": exc.get_codes() if isinstance(exc.get_codes(), str) else "error",
                "detail": str(exc.detail),
                "attr": None,
            }
        ]
    return {"type": _error_type(status_code or exc.status_code), "errors": errors}


def openai_error_body(exc: exceptions.APIException, status_code: int) -> dict[str, Any]:
    """OpenAI's error body for an API exception (the first field named, every reason said)."""
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail) or [{"code": "invalid", "detail": "Invalid request."}]
        first = errors[0]
        param = openai_param(first.get("attr"))
        messages = []
        for error in errors:
            name = openai_param(error.get("attr"))
            messages.append(f"'{name}': {error['detail']}" if name else error["detail"])
        # DRF's generic code says nothing OpenAI's null would not; specific ones are kept.
        code = first["code"] if first["code"] not in ("invalid", "error") else None
        return openai_error(status_code, "; ".join(messages), code=code, param=param)
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) and status_code not in OPENAI_CODES else None
    return openai_error(status_code, str(exc.detail), code=code)


def openai_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler for /openai/ views: OpenAI's error format."""
    exc = as_api_exception(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    assert isinstance(exc, exceptions.APIException)
    response.data = openai_error_body(exc, response.status_code)
    return response
