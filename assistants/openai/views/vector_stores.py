"""/openai/v1/vector_stores: stores, their files and file batches, and search."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet, Sum
from rest_framework.request import Request
from rest_framework.response import Response

from assistants.choices import FileStatus
from assistants.models import VectorStore, VectorStoreFile, VectorStoreFileBatch
from assistants.openai.base import OpenAIView, deleted
from assistants.openai.inputs import (
    FileBatchInput,
    ListInput,
    SearchInput,
    VectorStoreFileInput,
    VectorStoreInput,
)
from assistants.openai.pagination import cursor_page, list_body
from assistants.openai.services.files import (
    add_file_to_store,
    cancel_file_batch,
    create_file_batch,
    create_vector_store,
    delete_vector_store,
    remove_file_from_store,
    require_file,
    search_stores,
    touch_store,
    update_vector_store,
)
from assistants.openai.services.lookup import find
from assistants.openai.shapes import batch_shape, vector_store_file_shape, vector_store_shape
from engramia_site.errors import NotFound
from tenants.choices import Role


def store_body(store: VectorStore) -> dict[str, Any]:
    """A vector store with its file counts and size."""
    members = VectorStoreFile.objects.filter(vector_store=store)
    statuses = list(members.values_list("status", flat=True))
    usage = members.aggregate(total=Sum("usage_bytes"))["total"] or 0
    return vector_store_shape(store, statuses, usage)


def batch_body(batch: VectorStoreFileBatch) -> dict[str, Any]:
    """A file batch with its file counts."""
    statuses = list(batch.files.values_list("status", flat=True))
    return batch_shape(batch, statuses)


def _members(store: VectorStore, request: Request) -> QuerySet[VectorStoreFile]:
    members = VectorStoreFile.objects.filter(vector_store=store).select_related(
        "file", "vector_store"
    )
    wanted = request.query_params.get("filter")
    if wanted in {status.value for status in FileStatus}:
        members = members.filter(status=wanted)
    return members


class VectorStoreListView(OpenAIView):
    """GET: the project's vector stores; POST: a new one (with files)."""

    def get(self, request: Request) -> Response:
        stores = VectorStore.objects.for_project(self.project)
        return self.cursor_list(request, stores, store_body)

    def post(self, request: Request) -> Response:
        values = self.validated(VectorStoreInput, request.data)
        store = create_vector_store(
            project=self.project,
            name=values.get("name"),
            file_ids=values.get("file_ids") or [],
            metadata=values.get("metadata"),
            expires_after=values.get("expires_after"),
            actor=request.user,
        )
        return Response(store_body(store))


class VectorStoreDetailView(OpenAIView):
    """GET: one store; POST: rename it or change its metadata; DELETE: delete it."""

    def get(self, request: Request, store_id: str) -> Response:
        return Response(store_body(find(VectorStore, self.project, store_id)))

    def post(self, request: Request, store_id: str) -> Response:
        store = find(VectorStore, self.project, store_id)
        values = self.validated(VectorStoreInput, request.data, partial=True)
        values.pop("file_ids", None)
        store = update_vector_store(store=store, values=values, actor=request.user)
        return Response(store_body(store))

    def delete(self, request: Request, store_id: str) -> Response:
        store = find(VectorStore, self.project, store_id)
        delete_vector_store(store=store, actor=request.user)
        return deleted(store_id, "vector_store.deleted")


class VectorStoreSearchView(OpenAIView):
    """POST: the chunks of the store's files nearest to a query (a read)."""

    required_roles = {"POST": Role.READER}

    def post(self, request: Request, store_id: str) -> Response:
        store = find(VectorStore, self.project, store_id)
        values = self.validated(SearchInput, request.data)
        hits = search_stores(
            self.project, [store.public_id], values["query"], limit=values["max_num_results"]
        )
        touch_store(store)
        data = [
            {
                "file_id": hit.file_id,
                "filename": hit.filename,
                "score": hit.score,
                "attributes": {},
                "content": [{"type": "text", "text": hit.text}],
            }
            for hit in hits
        ]
        return Response(
            {
                "object": "vector_store.search_results.page",
                "search_query": [values["query"]],
                "data": data,
                "has_more": False,
                "next_page": None,
            }
        )


class VectorStoreFileListView(OpenAIView):
    """GET: the store's files (filter by status); POST: add a file."""

    def get(self, request: Request, store_id: str) -> Response:
        store = find(VectorStore, self.project, store_id)
        return self._page(request, _members(store, request))

    def _page(self, request: Request, members: QuerySet[VectorStoreFile]) -> Response:
        params = self.validated(ListInput, request.query_params)
        page = cursor_page(
            members,
            limit=params["limit"],
            order=params["order"],
            after=params.get("after"),
            before=params.get("before"),
            key="file__public_id",
        )
        return Response(list_body(page, vector_store_file_shape))

    def post(self, request: Request, store_id: str) -> Response:
        store = find(VectorStore, self.project, store_id)
        values = self.validated(VectorStoreFileInput, request.data)
        member = add_file_to_store(
            store=store,
            file_id=values["file_id"],
            attributes=values.get("attributes"),
            actor=request.user,
        )
        return Response(vector_store_file_shape(member))


class VectorStoreFileDetailView(OpenAIView):
    """GET: one file of the store; DELETE: take it out of the store."""

    def _member(self, store_id: str, file_id: str) -> VectorStoreFile:
        store = find(VectorStore, self.project, store_id)
        file = require_file(self.project, file_id)
        member = _members(store, self.request).filter(file=file).first()
        if member is None:
            raise NotFound(f"No file found with id '{file_id}' in vector store '{store_id}'.")
        return member

    def get(self, request: Request, store_id: str, file_id: str) -> Response:
        member = self._member(store_id, file_id)
        response = Response(vector_store_file_shape(member))
        if member.status == FileStatus.IN_PROGRESS:
            response["openai-poll-after-ms"] = "500"  # the SDK's *_and_poll helpers follow it
        return response

    def delete(self, request: Request, store_id: str, file_id: str) -> Response:
        remove_file_from_store(member=self._member(store_id, file_id), actor=request.user)
        return deleted(file_id, "vector_store.file.deleted")


class FileBatchCreateView(OpenAIView):
    """POST: add several files to a store as one batch."""

    def post(self, request: Request, store_id: str) -> Response:
        store = find(VectorStore, self.project, store_id)
        values = self.validated(FileBatchInput, request.data)
        batch = create_file_batch(
            store=store,
            file_ids=values["file_ids"],
            attributes=values.get("attributes"),
            actor=request.user,
        )
        return Response(batch_body(batch))


class FileBatchDetailView(OpenAIView):
    """GET: a batch and its file counts."""

    def get(self, request: Request, store_id: str, batch_id: str) -> Response:
        store = find(VectorStore, self.project, store_id)
        return Response(
            batch_body(find(VectorStoreFileBatch, self.project, batch_id, vector_store=store))
        )


class FileBatchCancelView(OpenAIView):
    """POST: cancel a batch's files not yet indexed."""

    def post(self, request: Request, store_id: str, batch_id: str) -> Response:
        store = find(VectorStore, self.project, store_id)
        batch = find(VectorStoreFileBatch, self.project, batch_id, vector_store=store)
        return Response(batch_body(cancel_file_batch(batch=batch, actor=request.user)))


class FileBatchFilesView(VectorStoreFileListView):
    """GET: the files of a batch."""

    def get(self, request: Request, store_id: str, batch_id: str) -> Response:  # type: ignore[override]
        store = find(VectorStore, self.project, store_id)
        batch = find(VectorStoreFileBatch, self.project, batch_id, vector_store=store)
        return self._page(request, _members(store, request).filter(batch=batch))

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        return self.http_method_not_allowed(request, *args, **kwargs)
