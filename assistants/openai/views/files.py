"""/openai/v1/files: upload (multipart, purpose assistants), list, retrieve, delete, content."""

from __future__ import annotations

from django.http import HttpResponse
from django.utils.http import content_disposition_header
from rest_framework.request import Request
from rest_framework.response import Response

from assistants.models import File
from assistants.openai.base import OpenAIView
from assistants.openai.inputs import FileInput, FileListInput
from assistants.openai.services.files import create_file, delete_file, require_file
from assistants.openai.shapes import file_shape
from engramia_site.parsers import MultiPartParser as CheckedMultiPartParser


class FileListView(OpenAIView):
    """GET: the project's files (purpose filters); POST: upload one."""

    parser_classes = [CheckedMultiPartParser]

    def get(self, request: Request) -> Response:
        params = self.validated(FileListInput, request.query_params)
        files = File.objects.for_project(self.project).defer("content")
        if params.get("purpose"):
            files = files.filter(purpose=params["purpose"])
        return self.cursor_list(request, files, file_shape, params=params)

    def post(self, request: Request) -> Response:
        values = self.validated(FileInput, request.data)
        upload = values["file"]
        file = create_file(
            project=self.project,
            name=upload.name,
            data=upload.read(),
            purpose=values["purpose"],
            actor=request.user,
        )
        return Response(file_shape(file))


class FileDetailView(OpenAIView):
    """GET: one file; DELETE: delete it (and take it out of every vector store)."""

    def get(self, request: Request, file_id: str) -> Response:
        return Response(file_shape(require_file(self.project, file_id)))

    def delete(self, request: Request, file_id: str) -> Response:
        delete_file(file=require_file(self.project, file_id), actor=request.user)
        return Response({"id": file_id, "object": "file", "deleted": True})


class FileContentView(OpenAIView):
    """GET: the file's bytes."""

    def get(self, request: Request, file_id: str) -> HttpResponse:
        file = require_file(self.project, file_id)
        response = HttpResponse(bytes(file.content), content_type="application/octet-stream")
        disposition = content_disposition_header(as_attachment=True, filename=file.filename)
        if disposition:
            response["Content-Disposition"] = disposition
        return response
