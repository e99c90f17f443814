"""The real URL map plus one ⧗ endpoint built on run_or_accept, for end-to-end Prefer tests."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response

from jobs.api.async_support import run_or_accept
from tenants.api.base import ScopedAPIView
from tenants.choices import Role


class EchoView(ScopedAPIView):
    """POST /v1/test-echo ⧗: answers {"echo": body} now, or as a test.echo job."""

    required_roles = {"POST": Role.EDITOR}

    def post(self, request: Request) -> Response:
        params = dict(request.data)
        return run_or_accept(
            request,
            project=self.project,
            kind="test.echo",
            params=params,
            run_sync=lambda: Response({"echo": params, "sync": True}),
        )


urlpatterns = [
    path("v1/test-echo", EchoView.as_view()),
    path("", include("engramia_site.urls")),
]
