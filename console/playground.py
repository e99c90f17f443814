"""The recall playground."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse


def playground_view(request: HttpRequest) -> HttpResponse:
    """Run a recall as the signed-in user."""
    return TemplateResponse(request, "console/playground.html", {})
