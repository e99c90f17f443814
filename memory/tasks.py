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
        raise JobFailed(f"invalid input: {exc.detail}") from exc


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
    """POST /v1/documents as a job."""
    return _run(document_operation, job, job.params)


@job_kind("import_assistants", timeout=6 * 3600)
def import_assistants_job(job: Any, ctx: Any) -> dict[str, Any]:
    """POST /v1/import/assistants: import an uploaded export (idempotent by message id)."""
    from memory.migration.importer import ImportNotAllowed, import_assistants_export
    from memory.models import ImportUpload
    from tenants.models import ApiKey

    upload = ImportUpload.objects.filter(pk=job.params["upload_id"], project=job.project).first()
    if upload is None:
        raise JobFailed("the uploaded export is gone; upload it again")
    # Grouping is re-checked against the key that queued the job; without it, it cannot be.
    key_id = job.params.get("api_key_id")
    api_key = ApiKey.objects.select_related("user").filter(pk=key_id).first() if key_id else None
    group_by = job.params.get("group_by", "none")
    if group_by != "none" and api_key is None:
        upload.delete()
        raise JobFailed(f"group_by={group_by} needs the tenant-wide admin key that queued it")

    def progress(done: int, total: int) -> None:
        ctx.progress(done, total)
        ctx.check_cancelled()

    with _job_errors():
        try:
            summary = import_assistants_export(
                project=job.project,
                stream=io.BytesIO(bytes(upload.data)),
                group_by=group_by,
                eval_score=job.params.get("eval_score", 5.0),
                dry_run=job.params.get("dry_run", False),
                actor=job.actor,
                api_key=api_key,
                progress=progress,
            )
        except ImportNotAllowed as exc:
            upload.delete()
            raise JobFailed(str(exc)) from exc
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
