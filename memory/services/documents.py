"""Documents (the replacement for assistant files): chunk, embed the chunk text, search."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from engramia_site.errors import InvalidInput
from engramia_site.request_context import audited
from jobs.models import Job
from jobs.services import submit_with_upload
from memory.models import Chunk, Document
from memory.pdf_extract import REFUSED
from retrieval.pinned_model import embed_in_current_model, embedder_for
from retrieval.search import cosine_distance
from tenants.models import Project

CHUNK_CHARS = 1200
CHUNK_OVERLAP = 150
MAX_DOCUMENT_CHARS = 5_000_000
DOCUMENTS_KIND = "documents"
TEXT_TYPES = ("text/plain", "text/markdown", "text/x-markdown", "application/json", "text/csv")
# The directory holding the memory package: the PDF child imports memory.pdf_extract from it.
_SOURCE_ROOT = str(Path(__file__).resolve().parents[2])

logger = logging.getLogger(__name__)


class DocumentError(InvalidInput):
    """A document that cannot be read or is too large (`field`: the input it came from)."""

    def __init__(self, message: str, *, field: str = "text") -> None:
        super().__init__(message, field=field)


@dataclass(frozen=True)
class DocumentMatch:
    """A chunk of a document that matches a query."""

    document_id: int
    name: str
    chunk_index: int
    text: str
    similarity: float


@dataclass(frozen=True)
class PdfLimits:
    """Bounds on reading one PDF (settings ENGRAMIA_PDF_*; see README "Configuration")."""

    max_pages: int
    max_seconds: int
    max_text_bytes: int
    max_inflated_bytes: int
    max_memory_bytes: int

    @classmethod
    def from_settings(cls) -> PdfLimits:
        """The limits this deployment is configured with."""
        return cls(
            max_pages=settings.PDF_MAX_PAGES,
            max_seconds=settings.PDF_MAX_SECONDS,
            max_text_bytes=settings.PDF_MAX_TEXT_BYTES,
            max_inflated_bytes=settings.PDF_MAX_DECOMPRESSED_BYTES,
            max_memory_bytes=settings.PDF_MAX_MEMORY_BYTES,
        )


def pdf_text(data: bytes, limits: PdfLimits | None = None) -> str:
    """The text of a PDF, read in a child process under limits (memory.pdf_extract).

    The child holds whatever the file inflates to and is killed when it runs out of time, so
    the calling worker's memory is back as soon as this returns.
    """
    limits = limits or PdfLimits.from_settings()
    command = [
        *(sys.executable, "-m", "memory.pdf_extract"),
        *("--max-pages", str(limits.max_pages), "--seconds", str(limits.max_seconds)),
        *("--max-text-bytes", str(limits.max_text_bytes)),
        *("--max-inflated-bytes", str(limits.max_inflated_bytes)),
        *("--max-memory", str(limits.max_memory_bytes)),
    ]
    paths = [_SOURCE_ROOT, *filter(None, [os.environ.get("PYTHONPATH")])]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    try:
        done = subprocess.run(
            command, input=data, capture_output=True, timeout=limits.max_seconds, env=environment
        )
    except subprocess.TimeoutExpired:
        raise DocumentError(
            f"reading the PDF took longer than {limits.max_seconds} seconds"
        ) from None
    reason = done.stderr.decode("utf-8", "replace").strip()
    if done.returncode == REFUSED:
        raise DocumentError(reason)
    if done.returncode != 0:  # killed by its CPU or memory limit, or crashed
        logger.warning("PDF extraction exited with %s: %s", done.returncode, reason[-500:])
        raise DocumentError("could not read the PDF within the memory and time allowed")
    text = done.stdout.decode("utf-8")
    if not text.strip():
        raise DocumentError(
            "the PDF has no text layer (a scanned image?); run OCR on it or upload its text"
        )
    return text


def extract_text(data: bytes, *, name: str, content_type: str) -> str:
    """Text of an upload: UTF-8 text and markdown as is, PDF through pdf_text's child process."""
    if content_type == "application/pdf" or name.lower().endswith(".pdf"):
        return pdf_text(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise DocumentError("the file is not UTF-8 text, markdown or PDF") from None
    if "\x00" in text:
        raise DocumentError("the file contains the null character U+0000: it is not text")
    return text


def chunk_text(text: str, *, size: int = CHUNK_CHARS, overlap: int = CHUNK_OVERLAP) -> list[str]:
    """Split on paragraphs into chunks of about `size` characters, overlapping a little."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    chunks: list[str] = []
    current = ""
    for paragraph in paragraphs:
        while len(paragraph) > size:  # a single huge paragraph: hard split
            head, paragraph = paragraph[:size], paragraph[size - overlap :]
            if current:
                chunks.append(current)
                current = ""
            chunks.append(head)
        if current and len(current) + len(paragraph) + 2 > size:
            chunks.append(current)
            current = current[-overlap:] + "\n\n" + paragraph if overlap else paragraph
        else:
            current = f"{current}\n\n{paragraph}" if current else paragraph
    if current:
        chunks.append(current)
    return chunks


@audited
@transaction.atomic
def add_document(
    *,
    project: Project,
    name: str,
    text: str,
    content_type: str = "text/plain",
    external_id: str | None = None,
    actor: Any,
) -> Document:
    """Store a document and its embedded chunks (idempotent by external_id)."""
    if external_id:
        existing = Document.objects.for_project(project).filter(external_id=external_id).first()
        if existing is not None:
            return existing
    if len(text) > MAX_DOCUMENT_CHARS:
        raise DocumentError(f"the document exceeds {MAX_DOCUMENT_CHARS} characters")
    if not text.strip():
        raise DocumentError("the document has no text")
    chunks = chunk_text(text)
    embedder = embedder_for(project)
    vectors = embedder.embed_documents(chunks)
    embedder, vectors = embed_in_current_model(project, chunks, embedder, vectors)
    document = Document.objects.create(
        project=project,
        name=name,
        content_type=content_type,
        size=len(text.encode()),
        chunk_count=len(chunks),
        external_id=external_id,
    )
    Chunk.objects.bulk_create(
        Chunk(
            document=document,
            project=project,
            index=index,
            text=chunk,
            embedding=vector,
            embedding_model=embedder.name,
        )
        for index, (chunk, vector) in enumerate(zip(chunks, vectors, strict=True))
    )
    return document


@audited
@transaction.atomic
def queue_document(*, project: Project, content: bytes, params: dict[str, Any], actor: Any) -> Job:
    """Store a document's content (an upload, or JSON text) apart and queue the job that adds it.

    The job's parameters name the stored row: a body of many megabytes never sits in the jobs
    table, and the web request never reads a PDF.
    """
    return submit_with_upload(
        project=project, kind=DOCUMENTS_KIND, content=content, params=params, actor=actor
    )


@audited
@transaction.atomic
def delete_document(*, document: Document, actor: Any) -> None:
    """Delete a document and its chunks (audited)."""
    document.delete()


def search_documents(
    project: Project,
    vector: list[float],
    *,
    limit: int = 5,
    document_ids: list[int] | None = None,
) -> list[DocumentMatch]:
    """The project's chunks nearest to a query vector (exact search within the project).

    document_ids narrows the search to those documents (an assistant's vector stores).
    """
    model = project.embedding_model
    chunks = Chunk.objects.for_project(project).filter(embedding_model=model)
    if document_ids is not None:
        chunks = chunks.filter(document_id__in=document_ids)
    rows = (
        chunks.annotate(distance=cosine_distance(vector, None))
        .select_related("document")
        .only("id", "index", "text", "document__id", "document__name")
        .order_by("distance")[:limit]
    )
    return [
        DocumentMatch(
            document_id=row.document.pk,
            name=row.document.name,
            chunk_index=row.index,
            text=row.text,
            similarity=round(max(0.0, 1.0 - row.distance), 6),  # type: ignore[attr-defined]
        )
        for row in rows
    ]


def search_documents_for_text(
    project: Project, query: str, *, limit: int = 5, document_ids: list[int] | None = None
) -> list[DocumentMatch]:
    """The chunks nearest to a query text, embedded with the project's model (read-only)."""
    vector = embedder_for(project).embed_query(query)
    return search_documents(project, vector, limit=limit, document_ids=document_ids)
