"""The base of every /openai/v1 view: an Engramia key, OpenAI's project header and errors.

Scope and roles are /v1's (tenants.api.base): the key's project, or the one a tenant-wide key
names in `OpenAI-Project` (the SDK sends it for `OpenAI(project=...)`); readers read, editors
write and run. Errors come in OpenAI's shape, so the SDK raises its own typed exceptions.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework.request import Request
from rest_framework.response import Response

from assistants.openai.inputs import ListInput
from assistants.openai.pagination import cursor_page, list_body
from engramia_site.api_errors import openai_exception_handler
from engramia_site.errors import InvalidInput
from jobs.operations import validate_input
from tenants.api.authentication import PROJECT_HEADER, ApiKeyAuthentication
from tenants.api.base import ScopedAPIView
from tenants.choices import Role

OPENAI_PROJECT = "OpenAI-Project"


class OpenAIKeyAuthentication(ApiKeyAuthentication):
    """A bearer Engramia key; a tenant-wide key names its project in OpenAI-Project."""

    project_headers = (OPENAI_PROJECT, PROJECT_HEADER)


class OpenAIView(ScopedAPIView):
    """An Assistants-compatible endpoint acting inside one project."""

    authentication_classes = [OpenAIKeyAuthentication]
    project_header = OPENAI_PROJECT
    required_roles: ClassVar[dict[str, Role]] = {
        "GET": Role.READER,
        "POST": Role.EDITOR,
        "DELETE": Role.EDITOR,
    }

    def get_exception_handler(self) -> Any:
        return openai_exception_handler

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        beta = request.headers.get("OpenAI-Beta", "")
        if "assistants=v1" in beta.replace(" ", ""):
            raise InvalidInput(
                "This server speaks Assistants v2 only (OpenAI-Beta: assistants=v2); v1 "
                "payloads such as the retrieval tool or file_ids are refused.",
                field="OpenAI-Beta",
            )

    def validated(self, serializer: Any, data: Any, *, partial: bool = False) -> dict[str, Any]:
        """The request's input, validated (a 400 naming the field otherwise)."""
        if partial:
            checked = serializer(data=data, partial=True)
            if not checked.is_valid():
                raise InvalidInput(checked.errors)
            return dict(checked.validated_data)
        return validate_input(serializer, data if data is not None else {})

    def cursor_list(
        self, request: Request, queryset: Any, shape: Any, *, params: dict[str, Any] | None = None
    ) -> Response:
        """A cursor list of queryset (limit, order, after, before from the query)."""
        params = params or self.validated(ListInput, request.query_params)
        page = cursor_page(
            queryset,
            limit=params["limit"],
            order=params["order"],
            after=params.get("after"),
            before=params.get("before"),
        )
        return Response(list_body(page, shape))


def deleted(public_id: str, kind: str) -> Response:
    """OpenAI's answer to a delete."""
    return Response({"id": public_id, "object": kind, "deleted": True})
