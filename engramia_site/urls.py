"""URL map: the admin at /admin/, the API at /v1/ with its docs at /v1/docs and /v1/redoc."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView

from engramia_site.api_docs import RedocView, SwaggerView
from engramia_site.openai_errors import is_openai_path, openai_error

v1: list[URLPattern | URLResolver] = [
    path("", include("tenants.api.urls")),
    path("", include("jobs.api.urls")),
    path("", include("memory.api.urls")),
    path("", include("skills.api.urls")),
    path("", include("conversations.api.urls")),
    path("", include("assistants.api.urls")),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SwaggerView.as_view(url_name="schema"), name="docs"),
    path("redoc", RedocView.as_view(url_name="schema"), name="redoc"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("v1/", include(v1)),
    # The Assistants-compatible API: OpenAI's wire format; streamed runs are sent from the event
    # loop by engramia_site.wsgi_bridge.
    path("openai/v1/", include("assistants.openai.urls")),
]


def _json_error(status: int, code: str, detail: str, path: str = "") -> JsonResponse:
    if is_openai_path(path):
        return JsonResponse(openai_error(status, detail, code=code), status=status)
    return JsonResponse(
        {
            "type": "client_error" if status < 500 else "server_error",
            "errors": [{"code": code, "detail": detail, "attr": None}],
        },
        status=status,
    )


def not_found(request: HttpRequest, exception: Any = None) -> Any:
    """JSON 404 for the API; the admin keeps Django's page."""
    if request.path.startswith("/v1/") or is_openai_path(request.path):
        return _json_error(404, "not_found", "No such endpoint.", request.path)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def server_error(request: HttpRequest) -> Any:
    """JSON 500 for the API (a bug: it is logged with the request id)."""
    if request.path.startswith("/v1/") or is_openai_path(request.path):
        return _json_error(500, "server_error", "Internal error; see the server log.", request.path)
    from django.views.defaults import server_error as default_server_error

    return default_server_error(request)


def bad_request(request: HttpRequest, exception: Any = None) -> Any:
    """JSON 400 for malformed requests that never reached a view."""
    if request.path.startswith("/v1/") or is_openai_path(request.path):
        return _json_error(400, "bad_request", "Malformed request.", request.path)
    from django.views.defaults import bad_request as default_bad_request

    return default_bad_request(request, exception)


handler404 = not_found
handler500 = server_error
handler400 = bad_request
