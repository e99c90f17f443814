"""POST /v1/import/assistants: upload an NDJSON export; always answered as a job."""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from assistants.importer import GROUP_BY
from assistants.services import queue_assistants_import
from jobs.api.async_support import accepted
from jobs.api.serializers import JobAcceptedSerializer
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

    group_by = serializers.ChoiceField(
        choices=GROUP_BY,
        default="none",
        help_text="Into this project (none), or a project per assistant or thread (a tenant "
        "admin's key).",
    )
    eval_score = serializers.FloatField(
        min_value=0, max_value=10, default=5.0, help_text="The score every imported pattern gets."
    )
    dry_run = serializers.BooleanField(
        default=False, help_text="Count what would be imported; store nothing."
    )


# One JSON object a line, as `assistants_export` writes it; lines that are not are reported.
NDJSON_BODY = {"type": "string", "format": "binary", "minLength": 1}


class ImportAssistantsView(ScopedAPIView):
    """Queue the import of an Assistants export into the project (admin)."""

    parser_classes = [NDJSONParser, JSONLinesParser]
    request_body_required = True  # an empty export is a 400
    required_roles = {"POST": Role.ADMIN}

    @extend_schema(
        request={"application/x-ndjson": NDJSON_BODY, "application/jsonl": NDJSON_BODY},
        parameters=[ImportOptionsSerializer],
        responses={202: JobAcceptedSerializer},
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
