"""`Prefer: respond-async` (RFC 7240) for slow endpoints: 202 and a job, or the synchronous answer.

A malformed Prefer header is ignored (preferences are hints a server may ignore), so the request
is answered synchronously; it is never an error.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.urls import reverse
from django.utils.cache import patch_vary_headers
from drf_spectacular.utils import OpenApiExample, OpenApiParameter
from rest_framework import status
from rest_framework.response import Response

from jobs.models import Job
from jobs.operations import Operation
from tenants.models import Project

logger = logging.getLogger("jobs")

RESPOND_ASYNC = "respond-async"
# How a ⧗ endpoint's schema offers the choice (RFC 7240 preferences; others are ignored).
PREFER_PARAMETER = OpenApiParameter(
    "Prefer",
    str,
    OpenApiParameter.HEADER,
    description="`respond-async`: answer 202 at once with the job that does the work.",
    examples=[OpenApiExample("async", value=RESPOND_ASYNC)],
)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class MalformedPreferHeader(ValueError):
    """The Prefer header does not follow RFC 7240's grammar."""


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    """Split on separator, except inside quoted strings (which may escape with a backslash)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quoted or escaped:
        raise MalformedPreferHeader("unterminated quoted string")
    parts.append("".join(current))
    return parts


def _name_and_value(text: str) -> tuple[str, str | None]:
    """`token [BWS "=" BWS word]`; an empty value is no value (RFC 7240 §2)."""
    name, equals, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not _TOKEN.fullmatch(name):
        raise MalformedPreferHeader(f"{name!r} is not a token")
    if not equals or value in ("", '""'):
        return name.lower(), None
    if value.startswith('"'):
        if len(value) < 2 or not value.endswith('"'):
            raise MalformedPreferHeader("bad quoted string")
        return name.lower(), re.sub(r"\\(.)", r"\1", value[1:-1])
    if not _TOKEN.fullmatch(value):
        raise MalformedPreferHeader(f"{value!r} is neither a token nor a quoted string")
    return name.lower(), value


def parse_prefer(header: str) -> dict[str, str | None]:
    """The preferences of a Prefer header value: lower-cased name → value (None when absent).

    Preferences are comma-separated and may carry `;`-separated parameters, which are checked
    for syntax and otherwise ignored; the first occurrence of a preference wins.
    """
    preferences: dict[str, str | None] = {}
    for element in _split_outside_quotes(header, ","):
        if not element.strip():
            continue  # empty list elements are allowed
        preference, *parameters = _split_outside_quotes(element, ";")
        name, value = _name_and_value(preference)
        for parameter in parameters:
            if parameter.strip():
                _name_and_value(parameter)
        preferences.setdefault(name, value)
    return preferences


def prefers_async(request: Any) -> bool:
    """True when the request's Prefer header asks for respond-async; malformed headers → False."""
    header = request.headers.get("Prefer", "")
    if not header:
        return False
    try:
        return RESPOND_ASYNC in parse_prefer(header)
    except MalformedPreferHeader as exc:
        logger.debug("ignoring malformed Prefer header %r: %s", header, exc)
        return False


def job_url(job: Job) -> str:
    """The job's status URL, /v1/jobs/<id>."""
    return reverse("job-detail", kwargs={"pk": job.pk})


def accepted(job: Job) -> Response:
    """202 with Location and Preference-Applied, body {"job_id", "status", "url"}."""
    url = job_url(job)
    return Response(
        {"job_id": job.pk, "status": job.status, "url": url},
        status=status.HTTP_202_ACCEPTED,
        headers={"Location": url, "Preference-Applied": RESPOND_ASYNC},
    )


def respond(request: Any, operation: Operation[Any], *, project: Project, data: Any) -> Response:
    """Perform a ⧗ operation now, or with `Prefer: respond-async` answer 202 with its job.

    The input is validated either way, so bad input is a 400 now and never a failed job later.
    The job receives the raw input and validates it again (it runs in another process).
    """
    actor = getattr(request, "user", None)
    if prefers_async(request):
        job = operation.submit(
            project=project, actor=actor, data=data if isinstance(data, dict) else {}
        )
        response = accepted(job)
    else:
        result = operation.run(project=project, actor=actor, data=data)
        code = status.HTTP_201_CREATED if operation.created(result) else status.HTTP_200_OK
        response = Response(operation.describe(result), status=code)
    patch_vary_headers(response, ("Prefer",))
    return response
