"""Job kinds of the memory app: the ⧗ endpoints run as jobs with the same operations.

A provider outage (503) is retried with backoff; invalid input fails at once with the reason.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rest_framework.exceptions import ValidationError

from engramia_site.api_errors import ServiceUnavailable
from jobs.exceptions import JobFailed, TransientJobError
from jobs.registry import job_kind
from memory.api.operations import (
    aging_operation,
    document_from_upload,
    document_operation,
    evaluate_operation,
    learn_operation,
)
from memory.providers.embeddings import EmbeddingError
from memory.services.indexes import INDEX_KIND, sync_project_indexes
from memory.services.reembedding import REEMBED_KIND, reembed_project


@contextmanager
def _job_errors() -> Iterator[None]:
    """Map the API's errors onto job outcomes."""
    try:
        yield
    except ServiceUnavailable as exc:
        raise TransientJobError(str(exc.detail)) from exc
    except ValidationError as exc:
        raise JobFailed(f"invalid input: {_reasons(exc.detail)}") from exc


def _reasons(detail: Any) -> str:
    """A validation error as `field: reason` text (not the repr of DRF's error details)."""
    if isinstance(detail, dict):
        return "; ".join(f"{name}: {_reasons(value)}" for name, value in detail.items())
    if isinstance(detail, list):
        return " ".join(_reasons(value) for value in detail)
    return str(detail)


def _run(
    operation: Callable[[Any, Any, Any], tuple[int, dict[str, Any]]], job: Any, params: Any
) -> dict[str, Any]:
    with _job_errors():
        return operation(job.project, job.actor, params)[1]


@job_kind("learn", timeout=300)
def learn_job(job: Any, ctx: Any) -> dict[str, Any]:
    """POST /v1/learn as a job."""
    return _run(learn_operation, job, job.params)


@job_kind("evaluate", timeout=600)
def evaluate_job(job: Any, ctx: Any) -> dict[str, Any]:
    """POST /v1/evaluate as a job."""
    return _run(evaluate_operation, job, job.params)


@job_kind("aging", timeout=3600)
def aging_job(job: Any, ctx: Any) -> dict[str, Any]:
    """POST /v1/aging as a job."""
    return _run(aging_operation, job, {})


@job_kind("documents", timeout=1800)
def document_job(job: Any, ctx: Any) -> dict[str, Any]:
    """POST /v1/documents as a job: read the stored content (a file, or JSON text), store it."""
    from memory.models import ImportUpload

    params = dict(job.params)
    upload_id = params.pop("upload_id", None)
    if upload_id is None:  # queued with its text inline, before contents were stored apart
        return _run(document_operation, job, params)
    upload = ImportUpload.objects.filter(pk=upload_id, project=job.project).first()
    if upload is None:
        raise JobFailed("the uploaded document is gone; upload it again")
    source = params.pop("file", None)
    try:
        with _job_errors():
            if source is None:
                data = {**params, "text": bytes(upload.data).decode("utf-8")}
            else:
                data = document_from_upload(params, bytes(upload.data), **source)
            result = document_operation(job.project, job.actor, data)[1]
    except JobFailed:
        upload.delete()  # the content is refused for good; a transient error keeps it to retry
        raise
    upload.delete()
    return result


@job_kind("import_assistants", timeout=6 * 3600)
def import_assistants_job(job: Any, ctx: Any) -> dict[str, Any]:
    """POST /v1/import/assistants: import an uploaded export (idempotent by message id)."""
    from memory.migration.importer import import_assistants_export
    from memory.models import ImportUpload

    upload = ImportUpload.objects.filter(pk=job.params["upload_id"], project=job.project).first()
    if upload is None:
        raise JobFailed("the uploaded export is gone; upload it again")

    def progress(done: int, total: int) -> None:
        ctx.progress(done, total)
        ctx.check_cancelled()

    with _job_errors():
        summary = import_assistants_export(
            project=job.project,
            stream=io.BytesIO(bytes(upload.data)),
            group_by=job.params.get("group_by", "none"),
            eval_score=job.params.get("eval_score", 5.0),
            dry_run=job.params.get("dry_run", False),
            actor=job.actor,
            progress=progress,
        )
    upload.delete()
    return summary.to_dict()


@job_kind(REEMBED_KIND, timeout=6 * 3600, max_attempts=5)
def reembed_job(job: Any, ctx: Any) -> dict[str, Any]:
    """PATCH /v1/project embedding_model: move the project's vectors to the new model."""
    try:
        return reembed_project(job, ctx)
    except EmbeddingError as exc:
        # Staged vectors and the checkpoint survive: the retry resumes where this one stopped.
        raise TransientJobError(f"the embedding provider failed: {exc}") from exc


@job_kind(INDEX_KIND, timeout=6 * 3600, max_attempts=3)
def project_index_job(job: Any, ctx: Any) -> dict[str, Any]:
    """Build (or drop) the project's own HNSW index; queued by learn in a large project."""
    report = sync_project_indexes(project_id=job.project_id)
    if report.skipped:
        # Another sync holds the lock; it may be building a different project's index.
        raise TransientJobError(report.skipped)
    return report.to_dict()
