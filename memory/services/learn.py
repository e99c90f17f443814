"""Learning patterns: one at a time with dedup, or in bulk for imports."""

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
from memory.choices import OnDuplicate
from memory.models import Evaluation, Pattern
from memory.services.evaluations import add_evaluation, refresh_eval_score
from memory.services.indexes import request_project_index
from memory.services.recall import nearest_patterns
from memory.services.task_text import normalize_task, pattern_text, task_hash
from retrieval.choices import EvaluatorKind
from retrieval.embeddings import get_embedder
from retrieval.pinned_model import embed_in_current_model, embedder_for
from retrieval.vectors import format_vector
from tenants.audit import fill_audit_context
from tenants.models import AuditEntry, Project

# Above this cosine similarity a new task is a near-duplicate of a stored one.
NEAR_DUPLICATE_SIMILARITY = 0.97


@dataclass(frozen=True)
class LearnResult:
    """What learn did: the pattern it stored (or matched), and the duplicate it found."""

    pattern_id: int
    stored: bool
    duplicate_of: int | None = None
    replaced: bool = False


def _find_duplicate(
    project: Project, task: str, digest: str, vector: list[float]
) -> tuple[Pattern | None, str]:
    """A live pattern in the project with the same normalized task or a near-identical vector.

    Also returns the search path, "hnsw" meaning the project is above the exact-search size.
    """
    same_task = (
        Pattern.objects.live().for_project(project).filter(task_hash=digest).order_by("pk").first()
    )
    if same_task is not None:
        return same_task, ""
    # The same scoped search recall uses: exact in small projects, HNSW in large ones.
    candidates, strategy = nearest_patterns(project, project.embedding_model, vector, window=1)
    nearest = candidates[0] if candidates else None
    if nearest is not None and 1.0 - nearest.distance >= NEAR_DUPLICATE_SIMILARITY:
        return Pattern.objects.get(pk=nearest.id), strategy
    return None, strategy


@audited
def learn_pattern(
    *,
    project: Project,
    task: str,
    code: str,
    actor: Any,
    output: str = "",
    eval_score: float | None = None,
    source: str = "api",
    run_id: str = "",
    external_id: str | None = None,
    created_at: datetime | None = None,
    metadata: dict[str, Any] | None = None,
    on_duplicate: OnDuplicate | str = OnDuplicate.SKIP,
    evaluator: str | None = None,
) -> LearnResult:
    """Store a pattern unless it is already known (by external_id, or as a near-duplicate)."""
    on_duplicate = OnDuplicate(on_duplicate)
    if external_id:
        existing = Pattern.objects.for_project(project).filter(external_id=external_id).first()
        if existing is not None:
            return LearnResult(existing.pk, stored=False, duplicate_of=existing.pk)
    embedder = embedder_for(project)
    vector = embedder.embed_documents([pattern_text(task)])[0]
    digest = task_hash(task)
    evaluator = evaluator or (EvaluatorKind.IMPORT if source == "import" else EvaluatorKind.API)
    with transaction.atomic():
        embedder, (vector,) = embed_in_current_model(
            project, [pattern_text(task)], embedder, [vector]
        )
        duplicate, strategy = _find_duplicate(project, task, digest, vector)
        if duplicate is not None and on_duplicate == OnDuplicate.SKIP:
            return LearnResult(duplicate.pk, stored=False, duplicate_of=duplicate.pk)
        if duplicate is not None and on_duplicate == OnDuplicate.REPLACE_WITH_BETTER:
            return _replace_if_better(
                duplicate,
                task=task,
                code=code,
                output=output,
                eval_score=eval_score,
                vector=vector,
                model_name=embedder.name,
                digest=digest,
                actor=actor,
                evaluator=evaluator,
                metadata=metadata,
                run_id=run_id,
            )
        pattern = Pattern(
            project=project,
            task=task,
            code=code,
            output=output or "",
            source=source,
            run_id=run_id or "",
            external_id=external_id or None,
            metadata=metadata or {},
            created_at=created_at or timezone.now(),
            task_hash=digest,
            embedding=vector,
            embedding_model=embedder.name,
        )
        try:
            with transaction.atomic():
                pattern.save()
        except IntegrityError:
            # A concurrent learn with the same external_id won the race.
            existing = Pattern.objects.for_project(project).get(external_id=external_id)
            return LearnResult(existing.pk, stored=False, duplicate_of=existing.pk)
        if eval_score is not None:
            add_evaluation(pattern=pattern, score=eval_score, evaluator=evaluator, actor=actor)
        if strategy == "hnsw":  # a large project: make sure its own index is there or coming
            request_project_index(project, embedder.name)
    return LearnResult(pattern.pk, stored=True, duplicate_of=duplicate.pk if duplicate else None)


def _replace_if_better(
    existing: Pattern,
    *,
    task: str,
    code: str,
    output: str,
    eval_score: float | None,
    vector: list[float],
    model_name: str,
    digest: str,
    actor: Any,
    evaluator: str,
    metadata: dict[str, Any] | None,
    run_id: str,
) -> LearnResult:
    """Overwrite a duplicate's solution only when the new one scores higher."""
    existing = Pattern.objects.select_for_update().get(pk=existing.pk)
    current = existing.eval_score
    better = eval_score is not None and (current is None or eval_score > current)
    if not better:
        return LearnResult(existing.pk, stored=False, duplicate_of=existing.pk)
    existing.task, existing.code, existing.output = task, code, output or ""
    # The model travels with the vector: a re-embedding sweep finds it if the project moved on.
    existing.task_hash, existing.embedding, existing.embedding_model = digest, vector, model_name
    if metadata:
        existing.metadata = {**existing.metadata, **metadata}
    if run_id:
        existing.run_id = run_id
    existing.save()
    # The old evaluations judged the old solution; the new score stands on its own.
    Evaluation.objects.filter(pattern=existing).delete()
    add_evaluation(pattern=existing, score=eval_score, evaluator=evaluator, actor=actor)  # type: ignore[arg-type]
    return LearnResult(existing.pk, stored=True, duplicate_of=existing.pk, replaced=True)


@audited
@transaction.atomic
def update_pattern(*, pattern: Pattern, changes: dict[str, Any], actor: Any) -> Pattern:
    """Curate a pattern: edit task/code/output/metadata or (un)archive it; re-embeds a new task."""
    pattern = Pattern.objects.select_for_update().select_related("project").get(pk=pattern.pk)
    for name in ("code", "output", "metadata", "archived"):
        if name in changes:
            setattr(pattern, name, changes[name])
    if "task" in changes and changes["task"] != pattern.task:
        embedder = embedder_for(pattern.project)
        pattern.task = changes["task"]
        pattern.task_hash = task_hash(pattern.task)
        pattern.embedding = embedder.embed_documents([pattern_text(pattern.task)])[0]
        pattern.embedding_model = embedder.name
    pattern.save()
    return pattern


@audited
@transaction.atomic
def delete_pattern(*, pattern: Pattern, actor: Any) -> None:
    """Delete a pattern and its evaluations (audited)."""
    pattern.delete()


@dataclass(frozen=True)
class LearnItem:
    """One pattern of a bulk learn (an import)."""

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
    """Counts of a bulk learn."""

    imported: int = 0
    skipped: int = 0
    pattern_ids: list[int] = field(default_factory=list)


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
) -> BulkLearnResult:
    """Learn many patterns, idempotent by external_id: embed in batches, insert in batches.

    Each batch is one transaction, so an interrupted import keeps what it finished and a rerun
    skips it. The next batch is embedded on a worker thread while this one is inserted (the
    model and the HNSW inserts each keep a core busy). Near-duplicate detection is left out on
    purpose: distinct conversations that resemble each other are all history worth keeping.
    """
    embedder = embedder_for(project)
    result = BulkLearnResult()
    content_type = ContentType.objects.get_for_model(Pattern)

    def insert(fresh: list[LearnItem], vectors: Future[list[list[float]]] | None) -> None:
        if vectors is None:
            return
        created = _insert_batch(
            project, fresh, vectors.result(), embedder.name, source, evaluator, actor, content_type
        )
        result.imported += len(created)
        result.skipped += len(fresh) - len(created)
        result.pattern_ids.extend(created)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="engramia-embed") as pool:
        pending: tuple[list[LearnItem], Future[list[list[float]]] | None, int] | None = None
        for start in range(0, len(items), batch_size):
            fresh, skipped = _unknown_items(project, items[start : start + batch_size])
            result.skipped += skipped
            texts = [pattern_text(item.task) for item in fresh]
            future = pool.submit(embedder.embed_documents, texts) if fresh else None
            if pending is not None:
                insert(pending[0], pending[1])
                if progress is not None:
                    progress(pending[2], len(items))
            pending = (fresh, future, min(start + batch_size, len(items)))
        if pending is not None:
            insert(pending[0], pending[1])
            if progress is not None:
                progress(pending[2], len(items))
    if result.imported:
        request_project_index(project, embedder.name)
    return result


def _unknown_items(project: Project, batch: Sequence[LearnItem]) -> tuple[list[LearnItem], int]:
    """The items of a batch whose external_id is not stored yet (nor repeated in the batch)."""
    ids = [item.external_id for item in batch if item.external_id]
    known = set(
        Pattern.objects.for_project(project)
        .filter(external_id__in=ids)
        .values_list("external_id", flat=True)
    )
    fresh: list[LearnItem] = []
    skipped = 0
    for item in batch:
        if item.external_id and item.external_id in known:
            skipped += 1
            continue
        if item.external_id:
            known.add(item.external_id)
        fresh.append(item)
    return fresh, skipped


@transaction.atomic
def _insert_batch(
    project: Project,
    items: list[LearnItem],
    vectors: list[list[float]],
    model_name: str,
    source: str,
    evaluator: str,
    actor: Any,
    content_type: ContentType,
) -> list[int]:
    """Insert one batch with its evaluations and audit entries in one transaction."""
    embedder, vectors = embed_in_current_model(
        project, [pattern_text(item.task) for item in items], get_embedder(model_name), vectors
    )
    model_name = embedder.name
    now = timezone.now()
    patterns = [
        Pattern(
            project=project,
            task=item.task,
            code=item.code,
            output=item.output or "",
            source=source,
            run_id=item.run_id,
            external_id=item.external_id,
            metadata=item.metadata,
            created_at=item.created_at or now,
            task_hash=task_hash(item.task),
            embedding=vector,
            embedding_model=model_name,
            eval_score=item.eval_score,
            eval_count=1 if item.eval_score is not None else 0,
            last_evaluated_at=now if item.eval_score is not None else None,
        )
        for item, vector in zip(items, vectors, strict=True)
    ]
    try:
        with transaction.atomic():
            stored = _copy_patterns(patterns)
    except IntegrityError:
        # A concurrent import of the same external ids: insert row by row, keeping the winner's.
        stored = []
        for pattern in patterns:
            try:
                with transaction.atomic():
                    stored.extend(Pattern.objects.bulk_create([pattern]))
            except IntegrityError:
                continue
    Evaluation.objects.bulk_create(
        Evaluation(
            pattern_id=p.pk,
            score=p.eval_score,
            evaluator=evaluator,
            actor=actor if getattr(actor, "pk", None) else None,
            created_at=now,
        )
        for p in stored
        if p.eval_score is not None
    )
    # Bulk inserts bypass model signals; write their audit entries explicitly, in bulk.
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
    return [p.pk for p in stored]


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
                copy.write_row(
                    (
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
                )
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


__all__ = [
    "BulkLearnResult",
    "LearnItem",
    "LearnResult",
    "delete_pattern",
    "learn_pattern",
    "learn_patterns_bulk",
    "normalize_task",
    "refresh_eval_score",
    "update_pattern",
]
