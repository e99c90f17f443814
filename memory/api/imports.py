"""POST /v1/import/assistants: upload an NDJSON export; always answered as a job."""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from jobs.api.async_support import accepted
from jobs.services import submit_job
from memory.migration.importer import GROUP_BY, ImportNotAllowed, authorize_grouping
from memory.models import ImportUpload
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
        options = ImportOptionsSerializer(data=request.query_params)
        options.is_valid(raise_exception=True)
        data = request.data
        if not isinstance(data, bytes) or not data.strip():
            raise exceptions.ValidationError({"body": ["The NDJSON export is empty."]})
        key = cast(ApiKey, request.auth)
        try:
            authorize_grouping(
                api_key=key, project=self.project, group_by=options.validated_data["group_by"]
            )
        except ImportNotAllowed as exc:
            raise exceptions.PermissionDenied(str(exc)) from exc
        upload = ImportUpload.objects.create(project=self.project, data=data, size=len(data))
        job = submit_job(
            project=self.project,
            kind="import_assistants",
            # The job checks the key again: its user's roles may change before it runs.
            params={"upload_id": upload.pk, "api_key_id": key.pk, **options.validated_data},
            actor=request.user,
        )
        return accepted(job)
