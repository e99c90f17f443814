"""POST /v1/import/assistants: upload an NDJSON export; always answered as a job."""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from assistants.importer import GROUP_BY
from assistants.services import queue_assistants_import
from jobs.api.async_support import accepted
from jobs.operations import validate_input
from tenants.api.base import ScopedAPIView
from tenants.choices import Role
from tenants.models import ApiKey


class NDJSONParser(BaseParser):
    """Keeps an NDJSON body as bytes: it is parsed line by line by the importer."""

    media_type = "application/x-ndjson"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        return stream.read() if stream is not None else b""


class JSONLinesParser(NDJSONParser):
    """The same for the application/jsonl spelling."""

    media_type = "application/jsonl"


class ImportOptionsSerializer(serializers.Serializer):
    """Query options of an import."""

    group_by = serializers.ChoiceField(choices=GROUP_BY, default="none")
    eval_score = serializers.FloatField(min_value=0, max_value=10, default=5.0)
    dry_run = serializers.BooleanField(default=False)


class ImportAssistantsView(ScopedAPIView):
    """Queue the import of an Assistants export into the project (admin)."""

    parser_classes = [NDJSONParser, JSONLinesParser]
    required_roles = {"POST": Role.ADMIN}

    @extend_schema(
        request={"application/x-ndjson": bytes},
        parameters=[
            OpenApiParameter("group_by", str),
            OpenApiParameter("eval_score", float),
            OpenApiParameter("dry_run", bool),
        ],
        responses={202: dict},
    )
    def post(self, request: Request) -> Response:
        options = validate_input(ImportOptionsSerializer, request.query_params)
        data = request.data if isinstance(request.data, bytes) else b""
        job = queue_assistants_import(
            project=self.project,
            actor=request.user,
            api_key=cast(ApiKey, request.auth),
            data=data,
            options=options,
        )
        return accepted(job)
