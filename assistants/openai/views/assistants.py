"""/openai/v1/assistants: create, list, retrieve, modify, delete."""

from __future__ import annotations

from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from assistants.models import Assistant
from assistants.openai.base import OpenAIView, deleted
from assistants.openai.inputs import AssistantInput, AssistantUpdateInput
from assistants.openai.services.lookup import find
from assistants.openai.services.objects import (
    create_assistant,
    delete_assistant,
    update_assistant,
)
from assistants.openai.shapes import assistant_shape


class AssistantListView(OpenAIView):
    """GET: the project's assistants; POST: a new one."""

    def get(self, request: Request) -> Response:
        assistants = Assistant.objects.for_project(self.project)
        return self.cursor_list(request, assistants, assistant_shape)

    def post(self, request: Request) -> Response:
        values = self.validated(AssistantInput, request.data)
        assistant = create_assistant(project=self.project, values=values, actor=request.user)
        return Response(assistant_shape(assistant), status=status.HTTP_200_OK)


class AssistantDetailView(OpenAIView):
    """GET: one assistant; POST: change it; DELETE: delete it."""

    def get(self, request: Request, assistant_id: str) -> Response:
        return Response(assistant_shape(find(Assistant, self.project, assistant_id)))

    def post(self, request: Request, assistant_id: str) -> Response:
        assistant = find(Assistant, self.project, assistant_id)
        values = self.validated(AssistantUpdateInput, request.data, partial=True)
        assistant = update_assistant(assistant=assistant, values=values, actor=request.user)
        return Response(assistant_shape(assistant))

    def delete(self, request: Request, assistant_id: str) -> Response:
        assistant = find(Assistant, self.project, assistant_id)
        delete_assistant(assistant=assistant, actor=request.user)
        return deleted(assistant_id, "assistant.deleted")
