"""Learning many patterns at once: imports, and agents that write in batches (`learn_many`).

Batches are embedded on a worker thread while the previous one is inserted, and inserted with
COPY (or one multi-row INSERT) together with their evaluations and audit entries. Items whose
external_id is stored already are skipped. With `dedup`, an item whose normalized task or
vector (cosine ≥ 0.97) matches a stored pattern, or whose normalized task repeats an earlier
item's, is skipped too: one statement per batch finds them all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from auditlog.models import LogEntry as BaseLogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from engramia_site.request_context import audited
from memory.models import Evaluation, Pattern
from memory.services.indexes import request_project_index
from memory.services.learn import LearnResult
from memory.services.learn_statement import NEAR_DUPLICATE_SIMILARITY
from memory.services.task_text import pattern_text, task_hash
from retrieval import search
from retrieval.choices import EvaluatorKind
from retrieval.embeddings import get_embedder
from retrieval.pinned_model import embed_in_current_model, embedder_for
from retrieval.search import indexed_dimensions, scoped_nearest_statement
from retrieval.vectors import format_vector
from tenants.audit import fill_audit_context
from tenants.models import AuditEntry, Project
from tenants.statements import audit_entry


@dataclass(frozen=True)
class LearnItem:
    """One pattern of a bulk learn (an import, or one item of `learn_many`)."""

    task: str
    code: str
    output: str = ""
    external_id: str | None = None
    run_id: str = ""
    created_at: datetime | None = None
    eval_score: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class BulkLearnResult:
    """Counts of a bulk learn, and what became of each item (in the order given)."""

    imported: int = 0
    skipped: int = 0
    pattern_ids: list[int] = field(default_factory=list)
    results: list[LearnResult] = field(default_factory=list)


@dataclass(frozen=True)
class _Options:
    """How a bulk learn stores its rows."""

    source: str
    evaluator: str
    actor: Any
    dedup: bool


@audited
def learn_patterns_bulk(
    *,
    project: Project,
    items: Sequence[LearnItem],
    actor: Any,
    source: str = "import",
    evaluator: str = EvaluatorKind.IMPORT,
    batch_size: int = 256,
    progress: Callable[[int, int], None] | None = None,
    dedup: bool = False,
) -> BulkLearnResult:
    """Learn many patterns, idempotent by external_id: embed in batches, insert in batches.

    Each batch is one transaction, so an interrupted import keeps what it finished and a rerun
    skips it. Imports leave near-duplicate detection out (`dedup=False`) on purpose: distinct
    conversations that resemble each other are all history worth keeping.
    """
    embedder = embedder_for(project)
    options = _Options(source=source, evaluator=evaluator, actor=actor, dedup=dedup)
    outcomes: dict[int, LearnResult] = {}

    def insert(batch: _Batch, done: int) -> None:
        if batch.vectors is not None:
            outcomes.update(_insert_batch(project, batch, embedder.name, options))
        if progress is not None:
            progress(done, len(items))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="engramia-embed") as pool:
        pending: tuple[_Batch, int] | None = None
        for start in range(0, len(items), batch_size):
            batch = _unknown_items(project, items, start, start + batch_size, outcomes)
            texts = [pattern_text(item.task) for _, item in batch.fresh]
            if texts:
                batch.vectors = pool.submit(embedder.embed_documents, texts)
            if pending is not None:
                insert(*pending)
            pending = (batch, min(start + batch_size, len(items)))
        if pending is not None:
            insert(*pending)
    result = BulkLearnResult(results=[_resolved(outcomes, index) for index in range(len(items))])
    result.pattern_ids = [outcome.pattern_id for outcome in result.results if outcome.stored]
    result.imported = len(result.pattern_ids)
    result.skipped = len(items) - result.imported
    if result.imported:
        request_project_index(project, embedder.name)
    return result


def _resolved(outcomes: dict[int, LearnResult], index: int) -> LearnResult:
    """The item's outcome, a repeat of an earlier item's external id pointing at its pattern."""
    outcome = outcomes[index]
    if outcome.pattern_id >= 0:
        return outcome
    owner = outcomes[-1 - outcome.pattern_id].pattern_id
    return LearnResult(owner, stored=False, duplicate_of=owner)


@dataclass
class _Batch:
    """A batch's items not known by external id (with their positions), and their vectors."""

    fresh: list[tuple[int, LearnItem]]
    vectors: Future[list[list[float]]] | None = None


def _unknown_items(
    project: Project,
    items: Sequence[LearnItem],
    start: int,
    stop: int,
    outcomes: dict[int, LearnResult],
) -> _Batch:
    """The batch's items whose external_id is not stored yet (nor repeated before them).

    The others get their outcome now: the pattern that holds their external id.
    """
    batch = list(enumerate(items[start:stop], start))
    ids = [item.external_id for _, item in batch if item.external_id]
    known = dict(
        Pattern.objects.for_project(project)
        .filter(external_id__in=ids)
        .values_list("external_id", "id")
    )
    fresh: list[tuple[int, LearnItem]] = []
    first_of: dict[str, int] = {}
    for index, item in batch:
        if item.external_id and item.external_id in known:
            owner = known[item.external_id]
            outcomes[index] = LearnResult(owner, stored=False, duplicate_of=owner)
        elif item.external_id and item.external_id in first_of:
            # A repeat of an earlier item: -1 - position stands for its pattern until stored.
            first = -1 - first_of[item.external_id]
            outcomes[index] = LearnResult(first, stored=False, duplicate_of=first)
        else:
            if item.external_id:
                first_of[item.external_id] = index
            fresh.append((index, item))
    return _Batch(fresh)


@transaction.atomic
def _insert_batch(
    project: Project, batch: _Batch, model_name: str, options: _Options
) -> dict[int, LearnResult]:
    """Insert one batch with its evaluations and audit entries in one transaction."""
    fresh = batch.fresh
    embedder, vectors = embed_in_current_model(
        project,
        [pattern_text(item.task) for _, item in fresh],
        get_embedder(model_name),
        cast(Future, batch.vectors).result(),
    )
    duplicates = _duplicates(project, embedder.name, fresh, vectors) if options.dedup else {}
    now = timezone.now()
    patterns = {
        index: _pattern(project, item, vector, embedder.name, options.source, now)
        for (index, item), vector in zip(fresh, vectors, strict=True)
        if index not in duplicates
    }
    stored = _store_patterns(list(patterns.values()))
    _write_evaluations(stored, options, now)
    _write_audit(project, stored, options.source, now)
    kept = {pattern.pk for pattern in stored}
    outcomes: dict[int, LearnResult] = {}
    for index, pattern in patterns.items():
        if pattern.pk in kept:
            outcomes[index] = LearnResult(pattern.pk, stored=True)
        else:  # a concurrent import stored this external id first
            winner = Pattern.objects.for_project(project).get(external_id=pattern.external_id)
            outcomes[index] = LearnResult(winner.pk, stored=False, duplicate_of=winner.pk)
    for index, owner in duplicates.items():
        target = owner if owner >= 0 else outcomes[-1 - owner].pattern_id
        outcomes[index] = LearnResult(target, stored=False, duplicate_of=target)
    return outcomes


def _pattern(
    project: Project, item: LearnItem, vector: list[float], model: str, source: str, now: Any
) -> Pattern:
    """The unsaved row of one item, its first evaluation's score already aggregated."""
    evaluated = item.eval_score is not None
    return Pattern(
        project=project,
        task=item.task,
        code=item.code,
        output=item.output or "",
        source=source,
        run_id=item.run_id,
        external_id=item.external_id or None,
        metadata=item.metadata,
        created_at=item.created_at or now,
        task_hash=task_hash(item.task),
        embedding=vector,
        embedding_model=model,
        eval_score=item.eval_score,
        eval_count=1 if evaluated else 0,
        last_evaluated_at=now if evaluated else None,
    )


_SCOPE = "project_id = %(project)s AND NOT archived AND embedding_model = %(model)s"
_SCOPE_ROWS = (
    "SELECT coalesce((SELECT live_rows FROM memory_scopesize"
    " WHERE project_id = %(project)s AND embedding_model = %(model)s), 0)"
)


def _duplicates(
    project: Project, model: str, fresh: list[tuple[int, LearnItem]], vectors: list[list[float]]
) -> dict[int, int]:
    """Item position → the stored pattern it duplicates (or -1 - position of an earlier item).

    One statement for the batch: the same normalized task, else the nearest stored vector at
    cosine ≥ 0.97 (exact search or HNSW, as recall would take).
    """
    near = scoped_nearest_statement(
        table=Pattern._meta.db_table,
        columns="id",
        scope=_SCOPE,
        dimensions=indexed_dimensions(model),
        size=_SCOPE_ROWS,
        vector="q.v",
    )
    statement = (
        "SELECT q.i, coalesce((SELECT min(id) FROM memory_pattern"  # noqa: S608
        " WHERE project_id = %(project)s"
        " AND NOT archived AND task_hash = q.h),"
        f" (SELECT id FROM ({near}) AS near WHERE 1.0 - distance >= %(similarity)s"
        " ORDER BY distance LIMIT 1))"
        " FROM unnest(%(vectors)s::text[], %(hashes)s::text[]) WITH ORDINALITY AS q(v, h, i)"
    )
    hashes = [task_hash(item.task) for _, item in fresh]
    params: dict[str, Any] = {
        "project": project.pk,
        "model": model,
        "vectors": [format_vector(vector) for vector in vectors],
        "hashes": hashes,
        "similarity": NEAR_DUPLICATE_SIMILARITY,
        "window": 1,
        "threshold": search.EXACT_SEARCH_MAX_ROWS,
        "probe": search.EXACT_SEARCH_MAX_ROWS + 1,
    }
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        stored = {int(row[0]) - 1: row[1] for row in cursor.fetchall()}
    duplicates: dict[int, int] = {}
    first_by_hash: dict[str, int] = {}
    for position, ((index, _), digest) in enumerate(zip(fresh, hashes, strict=True)):
        if stored[position] is not None:
            duplicates[index] = stored[position]
        elif digest in first_by_hash:
            duplicates[index] = -1 - first_by_hash[digest]
        else:
            first_by_hash[digest] = index
    return duplicates


def _store_patterns(patterns: list[Pattern]) -> list[Pattern]:
    """Insert the rows; those a concurrent import stored first (by external id) are left out."""
    try:
        with transaction.atomic():
            return _copy_patterns(patterns)
    except IntegrityError:
        # A concurrent import of the same external ids: insert row by row, keeping the winner's.
        stored: list[Pattern] = []
        for pattern in patterns:
            try:
                with transaction.atomic():
                    stored.extend(Pattern.objects.bulk_create([pattern]))
            except IntegrityError:
                continue
        return stored


def _write_evaluations(stored: list[Pattern], options: _Options, now: Any) -> None:
    """The first evaluation of every scored row, and its audit entry."""
    actor = options.actor if getattr(options.actor, "pk", None) else None
    evaluations = Evaluation.objects.bulk_create(
        Evaluation(
            pattern_id=p.pk,
            score=p.eval_score,
            evaluator=options.evaluator,
            actor=actor,
            created_at=now,
        )
        for p in stored
        if p.eval_score is not None
    )
    entries = []
    for evaluation in evaluations:
        entry = audit_entry(evaluation, now)
        entry.object_pk, entry.object_id = str(evaluation.pk), evaluation.pk
        entries.append(entry)
    AuditEntry.objects.bulk_create(entries)


def _write_audit(project: Project, stored: list[Pattern], source: str, now: Any) -> None:
    """Bulk inserts bypass model signals: write their audit entries explicitly, in bulk."""
    content_type = ContentType.objects.get_for_model(Pattern)
    entries = [
        AuditEntry(
            content_type=content_type,
            object_pk=str(p.pk),
            object_id=p.pk,
            object_repr=str(p)[:200],
            action=BaseLogEntry.Action.CREATE,
            changes={"source": ["None", source], "external_id": ["None", str(p.external_id)]},
            additional_data={
                "tenant_id": project.tenant_id,
                "project_id": project.pk,
                "bulk": True,
            },
            timestamp=now,
        )
        for p in stored
    ]
    for entry in entries:
        fill_audit_context(AuditEntry, entry)
    AuditEntry.objects.bulk_create(entries)


PATTERN_COPY_COLUMNS = (
    "project_id",
    "task",
    "code",
    "output",
    "source",
    "run_id",
    "external_id",
    "metadata",
    "created_at",
    "learned_at",
    "updated_at",
    "archived",
    "task_hash",
    "embedding",
    "embedding_model",
    "eval_score",
    "eval_count",
    "last_evaluated_at",
)


def _copy_patterns(patterns: list[Pattern]) -> list[Pattern]:
    """Insert patterns with COPY (several times faster than INSERT for vectors); sets their pks.

    Every pattern needs an external_id, by which the new ids are read back; otherwise this falls
    back to bulk_create.
    """
    if not patterns or any(not pattern.external_id for pattern in patterns):
        return Pattern.objects.bulk_create(patterns)
    now = timezone.now()
    columns = ", ".join(PATTERN_COPY_COLUMNS)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY memory_pattern ({columns}) FROM STDIN") as copy:
            for p in patterns:
                copy.write_row(_copy_row(p, now))
        cursor.execute(
            "SELECT external_id, id FROM memory_pattern WHERE project_id = %s "
            "AND external_id = ANY(%s)",
            [patterns[0].project_id, [p.external_id for p in patterns]],
        )
        ids = dict(cursor.fetchall())
    for pattern in patterns:
        pattern.pk = ids[pattern.external_id]
        pattern.learned_at = pattern.updated_at = now
    return patterns


def _copy_row(p: Pattern, now: datetime) -> tuple[Any, ...]:
    """One row for COPY, in PATTERN_COPY_COLUMNS' order."""
    return (
        p.project_id,
        p.task,
        p.code,
        p.output,
        p.source,
        p.run_id,
        p.external_id,
        Jsonb(p.metadata),
        p.created_at,
        now,
        now,
        p.archived,
        p.task_hash,
        format_vector(cast(list[float], p.embedding)),
        p.embedding_model,
        p.eval_score,
        p.eval_count,
        p.last_evaluated_at,
    )


__all__ = ["BulkLearnResult", "LearnItem", "learn_patterns_bulk"]
