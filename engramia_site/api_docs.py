"""The API's browsable docs, Swagger UI and Redoc, served from local static files under a CSP."""

from __future__ import annotations

from typing import Any

from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.request import Request
from rest_framework.response import Response

from engramia_site.security_headers import html_policy

# Both UIs style their elements inline at runtime (React style props, styled-components).
DOCS_STYLE_SRC = "'self' 'unsafe-inline'"


# The HTML pages that show the schema are not operations of the API they document.
DOCS_PAGES = frozenset({"/v1/docs", "/v1/redoc", "/v1/schema"})


def only_v1_operations(endpoints: list[Any], **kwargs: Any) -> list[Any]:
    """drf-spectacular hook: /v1/schema documents /v1's operations and nothing else."""
    return [
        endpoint
        for endpoint in endpoints
        if endpoint[0].startswith("/v1/") and endpoint[0] not in DOCS_PAGES
    ]


class SwaggerView(SpectacularSwaggerSplitView):
    """Swagger UI whose init script is a file (?script), so the page needs no inline script."""

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        if request.GET.get("script") is None:
            response["Content-Security-Policy"] = html_policy(style_src=DOCS_STYLE_SRC)
        return response


class RedocView(SpectacularRedocView):
    """Redoc without the stock page's Google Fonts links."""

    template_name = "engramia_site/redoc.html"

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        # Redoc's search index runs in a worker built from a blob: URL of its own bundle.
        response["Content-Security-Policy"] = html_policy(
            style_src=DOCS_STYLE_SRC, worker_src="'self' blob:"
        )
        return response
