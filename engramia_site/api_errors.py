"""One JSON error format for the whole API: {"type", "errors": [{"code", "detail", "attr"}]}."""

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


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler producing the contract's error format."""
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
