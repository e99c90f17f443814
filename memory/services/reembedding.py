"""Re-embedding: move a project to another embedding model without ever mixing two models.

A `reembed` job embeds every registered kind of row (`retrieval.registry`: patterns, document
chunks, project-owned skills) under the new model into a staging table while recall keeps using
the rows' own (old-model) vectors. One transaction then re-embeds what changed meanwhile, copies
the staged vectors into their rows and repoints the project (an audited save), and a last sweep
re-embeds rows that were written with the old model while the swap was in flight.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery

from engramia_site.errors import Conflict
from engramia_site.request_context import audited
from jobs.context import JobContext
from jobs.exceptions import JobCancelled, JobFailed
from jobs.models import Job
from jobs.services import submit_job
from memory.models import StagedEmbedding
from memory.services.indexes import request_index_sync_after_model_change
from retrieval.embeddings import Embedder, EmbeddingError, get_embedder
from retrieval.pinned_model import resolve_embedding_model
from retrieval.registry import EmbeddedRows, embedded_rows
from tenants.models import Project

REEMBED_KIND = "reembed"
# Rows embedded (and staged) per batch; the embedder splits a batch further as it needs to.
BATCH_SIZE = 256
# Rows read per round trip when the swap checks every row's text against its staged vector.
SCAN_CHUNK = 2000


class ReembeddingInProgress(Conflict):
    """The project already has a re-embedding job that has not ended."""

    def __init__(self, job: Job) -> None:
        self.job = job
        model = (job.params or {}).get("embedding_model", "another model")
        super().__init__(
            f"The project is already being re-embedded to {model} (job {job.pk}, {job.status}); "
            f"wait for it to end or cancel it first."
        )


def active_reembedding(project: Project) -> Job | None:
    """The project's pending or running re-embedding job, if any."""
    return Job.objects.active().filter(project=project, kind=REEMBED_KIND).order_by("pk").first()


@audited
def start_reembedding(
    *, project: Project, embedding_model: str, actor: Any, enqueue: bool = True
) -> Job | None:
    """Queue the job that moves project to embedding_model; None when it already uses it.

    Raises UnknownEmbeddingModel for a name no configured embedder answers to, and
    ReembeddingInProgress while another re-embedding of the project has not ended.
    """
    model = resolve_embedding_model(embedding_model)
    with transaction.atomic():
        # The project row lock makes the "no job is active" check and the submit one step.
        locked = Project.objects.select_for_update().get(pk=project.pk)
        running = active_reembedding(locked)
        if running is not None:
            raise ReembeddingInProgress(running)
        if locked.embedding_model == model:
            return None
        return submit_job(
            project=locked,
            kind=REEMBED_KIND,
            params={"embedding_model": model, "previous_model": locked.embedding_model},
            actor=actor,
            enqueue=enqueue,
        )


def text_digest(text: str) -> str:
    """sha256 of the exact text a vector was made from (a staged vector is stale when it moves)."""
    return hashlib.sha256(text.encode()).hexdigest()


def _stage(project_id: int, rows_of: EmbeddedRows, embedder: Embedder, rows: Sequence[Any]) -> int:
    """Stage new-model vectors for rows, skipping those already staged for their current text."""
    texts = {row.pk: rows_of.text(row) for row in rows}
    digests = {pk: text_digest(text) for pk, text in texts.items()}
    staged = dict(
        StagedEmbedding.objects.filter(
            project_id=project_id,
            kind=rows_of.kind,
            embedding_model=embedder.name,
            object_id__in=list(digests),
        ).values_list("object_id", "text_hash")
    )
    todo = [pk for pk, digest in digests.items() if staged.get(pk) != digest]
    if not todo:
        return 0
    vectors = embedder.embed_documents([texts[pk] for pk in todo])
    StagedEmbedding.objects.bulk_create(
        [
            StagedEmbedding(
                project_id=project_id,
                kind=rows_of.kind,
                object_id=pk,
                embedding_model=embedder.name,
                text_hash=digests[pk],
                embedding=vector,
            )
            for pk, vector in zip(todo, vectors, strict=True)
        ],
        update_conflicts=True,
        unique_fields=["project", "kind", "object_id"],
        update_fields=["embedding_model", "text_hash", "embedding", "created_at"],
    )
    return len(todo)


def _stage_all(project: Project, embedder: Embedder, ctx: JobContext) -> int:
    """Stage every row of the project, batch by batch, resuming from ctx's checkpoint."""
    kinds = [rows_of.kind for rows_of in embedded_rows()]
    resume = ctx.checkpoint_data or {}
    start = kinds.index(resume["kind"]) if resume.get("kind") in kinds else 0
    done = int(resume.get("done", 0))
    total = sum(rows_of.of(project.pk).count() for rows_of in embedded_rows())
    embedded = 0
    for index, rows_of in enumerate(embedded_rows()[start:], start):
        after = int(resume.get("after", 0)) if index == start else 0
        while True:
            batch = list(
                rows_of.of(project.pk)
                .filter(pk__gt=after)
                .only(*rows_of.fields)
                .order_by("pk")[:BATCH_SIZE]
            )
            if not batch:
                break
            embedded += _stage(project.pk, rows_of, embedder, batch)
            after = batch[-1].pk
            done += len(batch)
            ctx.progress(done, max(total, done))
            # Saved every batch: a retry (a killed worker) resumes here, not at the start.
            ctx.checkpoint({"kind": rows_of.kind, "after": after, "done": done}, force=True)
    return embedded


def _restage_changed(project: Project, rows_of: EmbeddedRows, embedder: Embedder) -> int:
    """Lock the project's rows of a kind and stage those added or edited since they were staged."""
    staged_hash = StagedEmbedding.objects.filter(
        project_id=project.pk,
        kind=rows_of.kind,
        embedding_model=embedder.name,
        object_id=OuterRef("pk"),
    ).values("text_hash")[:1]
    rows = (
        rows_of.of(project.pk)
        .select_for_update(of=("self",))
        .annotate(staged_hash=Subquery(staged_hash))
        .only(*rows_of.fields)
        .order_by("pk")
    )
    embedded = 0
    changed: list[Any] = []
    for row in rows.iterator(chunk_size=SCAN_CHUNK):
        if row.staged_hash != text_digest(rows_of.text(row)):
            changed.append(row)
        if len(changed) >= BATCH_SIZE:
            embedded += _stage(project.pk, rows_of, embedder, changed)
            changed = []
    if changed:
        embedded += _stage(project.pk, rows_of, embedder, changed)
    return embedded


def _swap(job: Job, embedder: Embedder) -> tuple[int, dict[str, int]]:
    """In one transaction: stage late changes, copy staged vectors in, repoint the project.

    Returns the vectors embedded here and the rows switched per kind; (0, {}) when an earlier
    attempt already swapped.
    """
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=job.project_id)
        if project.embedding_model == embedder.name:
            StagedEmbedding.objects.filter(project=project).delete()
            return 0, {}
        # Rows are locked while checked, so a curation edit cannot slip between check and copy;
        # rows inserted meanwhile keep the old model and are left to the sweep.
        late = sum(_restage_changed(project, rows_of, embedder) for rows_of in embedded_rows())
        switched: dict[str, int] = {}
        for rows_of in embedded_rows():
            staged = StagedEmbedding.objects.filter(
                project_id=project.pk,
                kind=rows_of.kind,
                embedding_model=embedder.name,
                object_id=OuterRef("pk"),
            )
            switched[rows_of.kind] = (
                rows_of.of(project.pk)
                .filter(Exists(staged))
                .update(
                    embedding=Subquery(staged.values("embedding")[:1]),
                    embedding_model=embedder.name,
                )
            )
        project.embedding_model = embedder.name
        project.audit_reason = f"re-embedding job {job.pk}"  # type: ignore[attr-defined]
        project.save(update_fields=["embedding_model"])  # audited, as the job's actor
        StagedEmbedding.objects.filter(project=project).delete()
    return late, switched


def _sweep(project_id: int, embedder: Embedder) -> int:
    """Re-embed, in place, rows of the project still carrying another model than embedder's.

    These are rows written with the old model by requests that began before the swap; the
    project already points to the new model, so they are updated directly (locked meanwhile).
    """
    swept = 0
    for rows_of in embedded_rows():
        after = 0
        while True:
            with transaction.atomic():
                batch = list(
                    rows_of.of(project_id)
                    .exclude(embedding_model=embedder.name)
                    .filter(pk__gt=after)
                    .select_for_update(of=("self",))
                    .only(*rows_of.fields, "embedding_model")
                    .order_by("pk")[:BATCH_SIZE]
                )
                if not batch:
                    break
                vectors = embedder.embed_documents([rows_of.text(row) for row in batch])
                for row, vector in zip(batch, vectors, strict=True):
                    row.embedding = vector
                    row.embedding_model = embedder.name
                rows_of.model.objects.bulk_update(  # type: ignore[attr-defined]
                    batch, ["embedding", "embedding_model"]
                )
            after = batch[-1].pk
            swept += len(batch)
    return swept


def reembed_project(job: Job, ctx: JobContext) -> dict[str, Any]:
    """Run a re-embedding job: stage, swap, sweep; resumable from its checkpoint.

    Cancelling stops it at the next batch before the swap (its staged vectors are dropped);
    once the swap has committed the job runs to the end. Raises EmbeddingError when the
    provider fails (the caller retries), JobFailed when the model cannot be loaded here.
    """
    name = job.params["embedding_model"]
    try:
        embedder = get_embedder(name)
    except EmbeddingError as exc:
        raise JobFailed(f"the embedding model {name} is not available here: {exc}") from exc
    if embedder.name != name:
        raise JobFailed(f"{name!r} is not a stored model name (it resolves to {embedder.name})")
    project = Project.objects.get(pk=job.project_id)
    result: dict[str, Any] = {
        "embedding_model": embedder.name,
        "previous_model": job.params.get("previous_model", project.embedding_model),
        "embedded": 0,
        "embedded_at_swap": 0,
        "switched": {},
        "swept": 0,
    }
    if project.embedding_model != embedder.name:
        # Vectors a finished job staged for another model are of no use to this one.
        StagedEmbedding.objects.filter(project=project).exclude(
            embedding_model=embedder.name
        ).delete()
        try:
            result["embedded"] = _stage_all(project, embedder, ctx)
            ctx.check_cancelled()  # the last moment a cancel can still stop the change
        except JobCancelled:
            StagedEmbedding.objects.filter(project=project).delete()
            raise
        result["embedded_at_swap"], result["switched"] = _swap(job, embedder)
    result["swept"] = _sweep(project.pk, embedder)
    # A large project's own HNSW index is per model: its index job drops the old one and
    # builds the new one (when the project still needs one of its own).
    index_job = request_index_sync_after_model_change(project, embedder.name)
    result["index_job"] = index_job.pk if index_job is not None else None
    finished = max(ctx.done, ctx.total or 0)
    ctx.progress(finished, finished)
    return result


__all__ = [
    "REEMBED_KIND",
    "ReembeddingInProgress",
    "active_reembedding",
    "reembed_project",
    "start_reembedding",
    "text_digest",
]
