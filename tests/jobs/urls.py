"""The real URL map plus one ⧗ endpoint built on an Operation, for end-to-end Prefer tests."""

from __future__ import annotations

from typing import Any

from django.urls import include, path
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from jobs.api.async_support import respond
from jobs.operations import Operation
from tenants.api.base import ScopedAPIView
from tenants.choices import Role


class EchoInput(serializers.Serializer):
    """Any JSON object, as is."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        return dict(data)


# Submitted as the test.echo job kind (tests/jobs/kinds.py), which echoes its params.
ECHO: Operation[dict[str, Any]] = Operation(
    kind="test.echo",
    input=EchoInput,
    perform=lambda *, project, actor, **params: params,
    describe=lambda params: {"echo": params, "sync": True},
)


class EchoView(ScopedAPIView):
    """POST /v1/test-echo ⧗: answers {"echo": body} now, or as a test.echo job."""

    required_roles = {"POST": Role.EDITOR}

    def post(self, request: Request) -> Response:
        return respond(request, ECHO, project=self.project, data=request.data)


urlpatterns = [
    path("v1/test-echo", EchoView.as_view()),
    path("", include("engramia_site.urls")),
]
