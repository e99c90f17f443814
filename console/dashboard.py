"""The dashboard: what memory holds and how it is used, over the projects a user may see."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def dashboard_context(request: HttpRequest) -> dict[str, Any]:
    """The dashboard's numbers for the request's user."""
    return {}
