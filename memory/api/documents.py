"""POST ⧗ /v1/documents (JSON text or a multipart `file`), GET the list, DELETE one.

A synchronous request reads the file (PDFs in a bounded child process) and stores it at once.
With `Prefer: respond-async` the request only stores the content in a row and queues the job,
which reads and stores it: nothing slow or unbounded runs in the web worker.
"""

from __future__ import annotations

from typing import Any

from django.utils.cache import patch_vary_headers
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.request import Request
from rest_framework.response import Response

from engramia_site.parsers import JSONParser, MultiPartParser
from jobs.api.async_support import PREFER_PARAMETER, accepted, prefers_async
from jobs.api.serializers import JobAcceptedSerializer
from jobs.operations import validate_input
from memory import operations
from memory.api.serializers import DocumentSerializer
from memory.inputs import DocumentCreateSerializer, DocumentUploadSerializer
from memory.models import Document
from memory.services import delete_document
from memory.services.documents import queue_document
from tenants.api.base import ScopedViewSet
from tenants.choices import Role


class DocumentViewSet(mixins.ListModelMixin, ScopedViewSet):
    """The project's documents: add (⧗), list, delete."""

    queryset = Document.objects.all()
    serializer_class = DocumentSerializer
    parser_classes = [JSONParser, MultiPartParser]
    required_roles = {"list": Role.READER, "create": Role.EDITOR, "destroy": Role.EDITOR}

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset().order_by("-created_at", "-id"))
        return self.get_paginated_response(DocumentSerializer(page, many=True).data)

    @extend_schema(
        request={
            "application/json": DocumentCreateSerializer,
            "multipart/form-data": DocumentUploadSerializer,
        },
        parameters=[PREFER_PARAMETER],
        responses={201: DocumentSerializer, 202: JobAcceptedSerializer},
    )
    def create(self, request: Request) -> Response:
        if "file" in request.FILES:
            response = self._create_from_upload(request)
        else:
            data: Any = request.data
            validated = operations.ADD_DOCUMENT.validate(data)
            if prefers_async(request):
                fields = {k: v for k, v in validated.items() if k != "text"}
                response = self._queue(request, validated["text"].encode("utf-8"), fields)
            else:
                response = self._store(request, data)
        patch_vary_headers(response, ("Prefer",))
        return response

    def _create_from_upload(self, request: Request) -> Response:
        fields = validate_input(DocumentUploadSerializer, request.data)
        upload = fields.pop("file")
        file_name, file_type = upload.name or "upload", upload.content_type or ""
        if prefers_async(request):
            source = {"file_name": file_name, "file_type": file_type}
            return self._queue(request, upload.read(), {**fields, "file": source})
        data = operations.document_from_file(
            fields, upload.read(), file_name=file_name, file_type=file_type
        )
        return self._store(request, data)

    def _store(self, request: Request, data: dict[str, Any]) -> Response:
        document = operations.ADD_DOCUMENT.run(project=self.project, actor=request.user, data=data)
        body = operations.ADD_DOCUMENT.describe(document)
        return Response(body, status=status.HTTP_201_CREATED)

    def _queue(self, request: Request, content: bytes, params: dict[str, Any]) -> Response:
        job = queue_document(
            project=self.project, content=content, params=params, actor=request.user
        )
        return accepted(job)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        delete_document(document=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
