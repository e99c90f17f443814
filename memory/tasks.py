"""Job kinds of the memory app that are not operations: re-embedding and index builds.

The ⧗ endpoints' kinds (learn, evaluate, aging, documents) are registered by their operations
(`memory.operations`).
"""

from __future__ import annotations

from typing import Any

from jobs.exceptions import TransientJobError
from jobs.registry import job_kind
from memory.services.indexes import INDEX_KIND, sync_project_indexes
from memory.services.reembedding import REEMBED_KIND, reembed_project


@job_kind(REEMBED_KIND, timeout=6 * 3600, max_attempts=5)
def reembed_job(job: Any, ctx: Any) -> dict[str, Any]:
    """PATCH /v1/project embedding_model: move the project's vectors to the new model."""
    # An EmbeddingError is retried by the runner; staged vectors and the checkpoint survive, so
    # the retry resumes where this attempt stopped.
    return reembed_project(job, ctx)


@job_kind(INDEX_KIND, timeout=6 * 3600, max_attempts=3)
def project_index_job(job: Any, ctx: Any) -> dict[str, Any]:
    """Build (or drop) the project's own HNSW index; queued by learn in a large project."""
    report = sync_project_indexes(project_id=job.project_id)
    if report.skipped:
        # Another sync holds the lock; it may be building a different project's index.
        raise TransientJobError(report.skipped)
    return report.to_dict()
