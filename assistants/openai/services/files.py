"""Files and vector stores, backed by Engramia documents (chunked, embedded, searchable).

A file's text becomes one document (external id `assistants-file:<file id>`), shared by every
vector store holding the file; it goes when the last of them lets the file go. Small text
files are indexed in the request; larger ones and PDFs by a job (the SDK's `*_and_poll`
helpers wait for either).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from assistants.choices import FileStatus
from assistants.models import File, Thread, VectorStore, VectorStoreFile, VectorStoreFileBatch
from assistants.openai import ids
from engramia_site.errors import InvalidInput, NotFound, TooLarge
from engramia_site.request_context import audited
from jobs.services import submit_job
from memory.models import Document
from memory.services.documents import (
    DocumentError,
    add_document,
    delete_document,
    extract_text,
    search_documents_for_text,
)
from tenants.models import Project

INDEX_KIND = "assistants_index_file"
# Text files up to this size are chunked and embedded in the request that adds them.
INLINE_INDEX_BYTES = 256 * 1024


@dataclass(frozen=True)
class FileHit:
    """A chunk of a file that matches a file_search query."""

    file_id: str
    filename: str
    text: str
    score: float


def external_id(file: File) -> str:
    """The document id a file's text is stored under."""
    return f"assistants-file:{file.public_id}"


@audited
@transaction.atomic
def create_file(*, project: Project, name: str, data: bytes, purpose: str, actor: Any) -> File:
    """Store an uploaded file."""
    if len(data) > settings.MAX_DOCUMENT_BYTES:
        raise TooLarge(f"A file is at most {settings.MAX_DOCUMENT_BYTES} bytes.")
    return File.objects.create(
        project=project,
        public_id=ids.new_id(ids.FILE),
        filename=(name or "upload")[:255],
        purpose=purpose,
        bytes=len(data),
        content=data,
    )


@audited
@transaction.atomic
def delete_file(*, file: File, actor: Any) -> None:
    """Delete a file, leaving every vector store that held it, and its document."""
    for member in VectorStoreFile.objects.filter(file=file).select_related("document"):
        _drop_member(member, actor=actor)
    file.delete()


def require_vector_stores(project: Project, store_ids: list[str], *, field: str) -> None:
    """Refuse ids that are not vector stores of the project."""
    found = set(
        VectorStore.objects.for_project(project)
        .filter(public_id__in=store_ids)
        .values_list("public_id", flat=True)
    )
    for index, store_id in enumerate(store_ids):
        if store_id not in found:
            raise InvalidInput(
                f"No vector store found with id '{store_id}'.", field=f"{field}.{index}"
            )


def _files(project: Project, file_ids: list[str], field: str) -> list[File]:
    files = {
        f.public_id: f for f in File.objects.for_project(project).filter(public_id__in=file_ids)
    }
    for index, file_id in enumerate(file_ids):
        if file_id not in files:
            raise InvalidInput(f"No file found with id '{file_id}'.", field=f"{field}.{index}")
    return [files[file_id] for file_id in dict.fromkeys(file_ids)]


@audited
@transaction.atomic
def create_vector_store(
    *,
    project: Project,
    name: str | None,
    file_ids: list[str],
    actor: Any,
    metadata: dict[str, Any] | None = None,
    expires_after: Any = None,
    field: str = "file_ids",
) -> VectorStore:
    """Create a vector store and add the given files to it."""
    files = _files(project, file_ids, field)
    store = VectorStore.objects.create(
        project=project,
        public_id=ids.new_id(ids.VECTOR_STORE),
        name=name,
        metadata=metadata or {},
        expires_after=expires_after,
    )
    for file in files:
        _add_member(store, file, actor=actor)
    return store


@audited
@transaction.atomic
def update_vector_store(*, store: VectorStore, values: dict[str, Any], actor: Any) -> VectorStore:
    """Rename a vector store or change its metadata."""
    for name in ("name", "metadata", "expires_after"):
        if name in values:
            setattr(store, name, values[name] if name != "metadata" else values[name] or {})
    store.save()
    return store


@audited
@transaction.atomic
def delete_vector_store(*, store: VectorStore, actor: Any) -> None:
    """Delete a vector store; its files stay, documents no other store uses go."""
    for member in store.files.select_related("document"):
        _drop_member(member, actor=actor)
    store.delete()


@audited
@transaction.atomic
def add_file_to_store(
    *,
    store: VectorStore,
    file_id: str,
    actor: Any,
    attributes: dict[str, Any] | None = None,
    batch: VectorStoreFileBatch | None = None,
) -> VectorStoreFile:
    """Add a file to a vector store (adding it twice returns the first)."""
    (file,) = _files(store.project, [file_id], "file_id")
    return _add_member(store, file, actor=actor, attributes=attributes, batch=batch)


@audited
@transaction.atomic
def create_file_batch(
    *, store: VectorStore, file_ids: list[str], actor: Any, attributes: dict[str, Any] | None = None
) -> VectorStoreFileBatch:
    """Add several files to a vector store as one batch."""
    files = _files(store.project, file_ids, "file_ids")
    batch = VectorStoreFileBatch.objects.create(
        project_id=store.project_id, vector_store=store, public_id=ids.new_id(ids.FILE_BATCH)
    )
    for file in files:
        _add_member(store, file, actor=actor, attributes=attributes, batch=batch)
    return batch


@audited
@transaction.atomic
def cancel_file_batch(*, batch: VectorStoreFileBatch, actor: Any) -> VectorStoreFileBatch:
    """Stop indexing a batch's files that have not been indexed yet (a finished batch stays)."""
    pending = list(batch.files.filter(status=FileStatus.IN_PROGRESS))
    for member in pending:
        member.status = FileStatus.CANCELLED
        member.save(update_fields=["status"])
    if pending:
        batch.status = FileStatus.CANCELLED
        batch.save(update_fields=["status"])
    return batch


@audited
@transaction.atomic
def remove_file_from_store(*, member: VectorStoreFile, actor: Any) -> None:
    """Take a file out of a vector store (the file itself stays)."""
    _drop_member(member, actor=actor)


@audited
@transaction.atomic
def attach_to_thread_store(
    *, thread: Thread, file_ids: list[str], actor: Any, field: str = "attachments"
) -> VectorStore:
    """Files attached to a message: put them in the thread's vector store (made on first use)."""
    files = _files(thread.project, file_ids, field)
    search = (thread.tool_resources or {}).get("file_search") or {}
    store_ids = list(search.get("vector_store_ids") or [])
    store = (
        VectorStore.objects.for_project(thread.project_id).filter(public_id__in=store_ids).first()
    )
    if store is None:
        store = VectorStore.objects.create(
            project_id=thread.project_id,
            public_id=ids.new_id(ids.VECTOR_STORE),
            name=f"{thread.public_id} attachments",
        )
        thread.tool_resources = {"file_search": {"vector_store_ids": [store.public_id]}}
        thread.save(update_fields=["tool_resources"])
    for file in files:
        _add_member(store, file, actor=actor)
    return store


def _add_member(
    store: VectorStore,
    file: File,
    *,
    actor: Any,
    attributes: dict[str, Any] | None = None,
    batch: VectorStoreFileBatch | None = None,
) -> VectorStoreFile:
    member, created = VectorStoreFile.objects.get_or_create(
        vector_store=store,
        file=file,
        defaults={"project_id": store.project_id, "attributes": attributes or {}, "batch": batch},
    )
    if not created:
        return member
    inline = file.bytes <= INLINE_INDEX_BYTES and not file.filename.lower().endswith(".pdf")
    if inline:
        return index_member(member, actor=actor)
    submit_job(project=store.project, kind=INDEX_KIND, params={"member": member.pk}, actor=actor)
    return member


def _drop_member(member: VectorStoreFile, *, actor: Any) -> None:
    document = member.document
    member.delete()
    if document is not None and not VectorStoreFile.objects.filter(document=document).exists():
        delete_document(document=document, actor=actor)


def index_member(member: VectorStoreFile, *, actor: Any) -> VectorStoreFile:
    """Chunk and embed a file's text as its document; the member ends completed or failed."""
    file = member.file
    document = (
        Document.objects.for_project(member.project_id)
        .filter(external_id=external_id(file))
        .first()
    )
    if document is None:
        try:
            text = extract_text(bytes(file.content), name=file.filename, content_type="")
            document = add_document(
                project=file.project,
                name=file.filename,
                text=text,
                content_type="text/markdown" if file.filename.endswith(".md") else "text/plain",
                external_id=external_id(file),
                actor=actor,
            )
        except DocumentError as exc:
            member.status = FileStatus.FAILED
            member.last_error = {"code": "invalid_file", "message": str(exc)}
            member.save(update_fields=["status", "last_error"])
            return member
    member.document = document
    member.status = FileStatus.COMPLETED
    member.usage_bytes = document.size
    member.last_error = None
    member.save(update_fields=["document", "status", "usage_bytes", "last_error"])
    return member


def store_documents(project: Project, store_ids: list[str]) -> dict[int, File]:
    """The documents of the given vector stores' indexed files, each with its file."""
    members = (
        VectorStoreFile.objects.for_project(project)
        .filter(vector_store__public_id__in=store_ids, status=FileStatus.COMPLETED)
        .exclude(document=None)
        .select_related("file")
        .only("document_id", "file__public_id", "file__filename")
    )
    return {member.document_id: member.file for member in members if member.document_id}


def search_stores(
    project: Project, store_ids: list[str], query: str, *, limit: int, threshold: float = 0.0
) -> list[FileHit]:
    """The chunks of the stores' files nearest to query, best first (a file_search)."""
    documents = store_documents(project, store_ids)
    if not documents:
        return []
    matches = search_documents_for_text(project, query, limit=limit, document_ids=list(documents))
    return [
        FileHit(
            file_id=documents[match.document_id].public_id,
            filename=documents[match.document_id].filename,
            text=match.text,
            score=match.similarity,
        )
        for match in matches
        if match.similarity >= threshold
    ]


def touch_store(store: VectorStore) -> None:
    """Record that a vector store was used."""
    VectorStore.objects.filter(pk=store.pk).update(last_active_at=timezone.now())


def require_file(project: Project, public_id: str) -> File:
    """The project's file with this id, or NotFound."""
    file = File.objects.for_project(project).filter(public_id=public_id).first()
    if file is None:
        raise NotFound(f"No file found with id '{public_id}'.")
    return file


__all__ = [
    "INDEX_KIND",
    "FileHit",
    "add_file_to_store",
    "attach_to_thread_store",
    "cancel_file_batch",
    "create_file",
    "create_file_batch",
    "create_vector_store",
    "delete_file",
    "delete_vector_store",
    "index_member",
    "remove_file_from_store",
    "require_vector_stores",
    "search_stores",
    "update_vector_store",
]
