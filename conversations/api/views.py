"""Session endpoints: the Agents SDK Session protocol over HTTP (get, add, pop, clear)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from conversations.api.serializers import (
    SessionClearedSerializer,
    SessionItemsAddedSerializer,
    SessionPageSerializer,
    SessionPoppedSerializer,
)
from conversations.inputs import (
    SessionIdSerializer,
    SessionItemsAddSerializer,
    SessionItemsQuerySerializer,
)
from conversations.services import (
    add_session_items,
    clear_session,
    pop_session_item,
    session_page,
)
from engramia_site.parsers import JSONParser
from tenants.api.base import ScopedAPIView
from tenants.api.schema import error_responses
from tenants.choices import Role

SESSION_ID_PARAMETER = OpenApiParameter(
    "session_id",
    str,
    OpenApiParameter.PATH,
    description="Any text up to 255 characters, percent-encoded ('/' as %2F).",
)


class SessionView(ScopedAPIView):
    """DELETE /v1/sessions/<id>: clear the session (part of the protocol, so editor).

    Every session route answers DELETE as a clear of the whole path after `sessions/`: WSGI
    decodes %2F before routing, so the id `chat/items` arrives on the items route as `chat`.
    """

    required_roles = {"GET": Role.READER, "POST": Role.EDITOR, "DELETE": Role.EDITOR}
    parser_classes = [JSONParser]
    route_suffix = ""  # what the route matched after the id

    @property
    def allowed_methods(self) -> list[str]:
        """Allow (and OPTIONS) as the schema has it: on the item and pop routes DELETE is not a
        method of the route but the clear of the session `<id>/items` or `<id>/pop`."""
        methods = list(super().allowed_methods)
        return [m for m in methods if m != "DELETE"] if self.route_suffix else methods

    def clean_session_id(self, raw: str) -> str:
        """The id as local mode reads it (trimmed, 1-255 characters, no U+0000), or a 400."""
        serializer = SessionIdSerializer(data={"session_id": raw})
        serializer.is_valid(raise_exception=True)
        session_id: str = serializer.validated_data["session_id"]
        return session_id

    @extend_schema(parameters=[SESSION_ID_PARAMETER], responses={200: SessionClearedSerializer})
    def delete(self, request: Request, session_id: str) -> Response:
        cleaned = self.clean_session_id(session_id + self.route_suffix)
        removed = clear_session(project=self.project, session_id=cleaned, actor=request.user)
        return Response({"session_id": cleaned, "removed": removed})


@extend_schema_view(delete=extend_schema(exclude=True))
class SessionItemsView(SessionView):
    """GET /v1/sessions/<id>/items (reader), POST /v1/sessions/<id>/items (editor)."""

    route_suffix = "/items"
    refuses_empty_query_values = True  # `limit=` is a 400, not the default

    @extend_schema(
        parameters=[
            SESSION_ID_PARAMETER,
            SessionItemsQuerySerializer,
        ],
        responses=SessionPageSerializer,
    )
    def get(self, request: Request, session_id: str) -> Response:
        cleaned = self.clean_session_id(session_id)
        query = SessionItemsQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        page = session_page(project=self.project, session_id=cleaned, **query.validated_data)
        return Response(
            {"session_id": cleaned, "items": page.items, "next_before": page.next_before}
        )

    @extend_schema(
        parameters=[SESSION_ID_PARAMETER],
        request=SessionItemsAddSerializer,
        responses={201: SessionItemsAddedSerializer, **error_responses(409)},
    )
    def post(self, request: Request, session_id: str) -> Response:
        cleaned = self.clean_session_id(session_id)
        body = SessionItemsAddSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        added = add_session_items(
            project=self.project,
            session_id=cleaned,
            items=body.validated_data["items"],
            actor=request.user,
        )
        return Response({"session_id": cleaned, "added": added}, status=status.HTTP_201_CREATED)


@extend_schema_view(delete=extend_schema(exclude=True))
class SessionPopView(SessionView):
    """POST /v1/sessions/<id>/pop (editor): remove and return the latest item, or null."""

    route_suffix = "/pop"

    @extend_schema(
        parameters=[SESSION_ID_PARAMETER], request=None, responses=SessionPoppedSerializer
    )
    def post(self, request: Request, session_id: str) -> Response:
        cleaned = self.clean_session_id(session_id)
        if request.data:  # an empty JSON object, or no body at all
            raise exceptions.ValidationError({"non_field_errors": ["Pop takes no parameters."]})
        item = pop_session_item(project=self.project, session_id=cleaned, actor=request.user)
        return Response({"session_id": cleaned, "item": item})
