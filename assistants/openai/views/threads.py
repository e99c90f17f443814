"""/openai/v1/threads and their messages."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from assistants.models import Message, Thread
from assistants.openai.base import OpenAIView, deleted
from assistants.openai.inputs import (
    MessageInput,
    MessageListInput,
    MetadataInput,
    ThreadInput,
    ThreadUpdateInput,
)
from assistants.openai.services.lookup import find, find_thread
from assistants.openai.services.objects import (
    add_message,
    create_thread,
    delete_message,
    delete_thread,
    update_metadata,
    update_thread,
)
from assistants.openai.shapes import message_shape, thread_shape


class ThreadListView(OpenAIView):
    """GET: the project's threads (which OpenAI never listed); POST: a new thread."""

    def get(self, request: Request) -> Response:
        return self.cursor_list(request, Thread.objects.for_project(self.project), thread_shape)

    def post(self, request: Request) -> Response:
        values = self.validated(ThreadInput, request.data)
        thread = create_thread(project=self.project, values=values, actor=request.user)
        return Response(thread_shape(thread))


class ThreadDetailView(OpenAIView):
    """GET: one thread; POST: change its metadata or tool resources; DELETE: delete it."""

    def get(self, request: Request, thread_id: str) -> Response:
        return Response(thread_shape(find_thread(self.project, thread_id)))

    def post(self, request: Request, thread_id: str) -> Response:
        thread = find_thread(self.project, thread_id)
        values = self.validated(ThreadUpdateInput, request.data, partial=True)
        thread = update_thread(thread=thread, values=values, actor=request.user)
        return Response(thread_shape(thread))

    def delete(self, request: Request, thread_id: str) -> Response:
        thread = find_thread(self.project, thread_id)
        delete_thread(thread=thread, actor=request.user)
        return deleted(thread_id, "thread.deleted")


class MessageListView(OpenAIView):
    """GET: a thread's messages (run_id filters); POST: add one (not while a run is active)."""

    def get(self, request: Request, thread_id: str) -> Response:
        thread = find_thread(self.project, thread_id)
        params = self.validated(MessageListInput, request.query_params)
        messages = Message.objects.filter(thread=thread)
        if params.get("run_id"):
            messages = messages.filter(run_ref=params["run_id"])

        def shape(message: Message) -> dict:
            return message_shape(message, thread.public_id)

        return self.cursor_list(request, messages, shape, params=params)

    def post(self, request: Request, thread_id: str) -> Response:
        thread = find_thread(self.project, thread_id)
        values = self.validated(MessageInput, request.data)
        message = add_message(thread=thread, values=values, actor=request.user)
        return Response(message_shape(message, thread.public_id))


class MessageDetailView(OpenAIView):
    """GET: one message; POST: change its metadata; DELETE: delete it."""

    def _message(self, thread_id: str, message_id: str) -> tuple[Thread, Message]:
        thread = find_thread(self.project, thread_id)
        return thread, find(Message, self.project, message_id, thread=thread)

    def get(self, request: Request, thread_id: str, message_id: str) -> Response:
        thread, message = self._message(thread_id, message_id)
        return Response(message_shape(message, thread.public_id))

    def post(self, request: Request, thread_id: str, message_id: str) -> Response:
        thread, message = self._message(thread_id, message_id)
        values = self.validated(MetadataInput, request.data, partial=True)
        update_metadata(row=message, metadata=values.get("metadata"), actor=request.user)
        return Response(message_shape(message, thread.public_id))

    def delete(self, request: Request, thread_id: str, message_id: str) -> Response:
        _, message = self._message(thread_id, message_id)
        delete_message(message=message, actor=request.user)
        return deleted(message_id, "thread.message.deleted")
