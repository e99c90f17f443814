"""Learning one pattern: dedup as `on_duplicate` asks, then the row, its evaluation and audit.

The common case is one round trip (`memory.services.learn_statement`); replacing a duplicate
with a better solution, and a concurrent learn winning an external id, take a few more.
Bulk learning (imports, `Memory.learn_many`) is in `memory.services.learn_bulk`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from engramia_site.errors import Conflict, NotFound
from engramia_site.request_context import audited
from memory.choices import OnDuplicate
from memory.models import Evaluation, Pattern
from memory.services.evaluations import add_evaluation, refresh_eval_score
from memory.services.indexes import request_project_index
from memory.services.learn_statement import NEAR_DUPLICATE_SIMILARITY, run_learn_statement
from memory.services.task_text import normalize_task, pattern_text, task_hash
from retrieval import search
from retrieval.choices import EvaluatorKind
from retrieval.embeddings import Embedder
from retrieval.pinned_model import embed_in_current_model, embedder_for
from retrieval.ranking import aggregate_eval_score
from retrieval.search import indexed_dimensions
from retrieval.vectors import format_vector
from tenants.models import Project

# How many times learn follows the project to a new model before giving up (a re-embedding
# swap moves it once; more means something keeps changing it).
MODEL_CHANGES = 3


@dataclass(frozen=True)
class LearnResult:
    """What learn did: the pattern it stored (or matched), and the duplicate it found.

    `pattern_count` is the project's live patterns once a new one is stored (kept by the
    database, never counted), None otherwise.
    """

    pattern_id: int
    stored: bool
    duplicate_of: int | None = None
    replaced: bool = False
    pattern_count: int | None = None


def first_evaluation_fields(score: float | None, now: datetime) -> dict[str, Any]:
    """A new pattern's score fields when its first evaluation is score (None: unevaluated)."""
    if score is None:
        return {"eval_score": None, "eval_count": 0, "last_evaluated_at": None}
    return {"eval_score": aggregate_eval_score([score]), "eval_count": 1, "last_evaluated_at": now}


def first_evaluation(
    pattern: Pattern, score: float | None, evaluator: str, actor: Any, now: datetime
) -> Evaluation | None:
    """The evaluation a new pattern is stored with (None when learn got no score)."""
    if score is None:
        return None
    if not 0.0 <= float(score) <= 10.0:
        raise ValueError("score must be between 0 and 10")
    return Evaluation(
        pattern=pattern,
        score=float(score),
        evaluator=str(evaluator),
        actor=actor if getattr(actor, "pk", None) else None,
        created_at=now,
    )


@dataclass(frozen=True)
class _Draft:
    """What learn was asked to store, before the embedding and the row."""

    fields: dict[str, Any]
    created_at: datetime | None
    eval_score: float | None
    evaluator: str
    on_duplicate: OnDuplicate


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
    """Store a pattern unless it is already known (by external_id, or as a near-duplicate).

    `skip` and `replace_with_better` look for a live pattern with the same normalized task or
    a vector at cosine ≥ 0.97; `keep_both` stores without looking.
    """
    draft = _Draft(
        fields={
            "task": task,
            "code": code,
            "output": output or "",
            "source": source,
            "run_id": run_id or "",
            "external_id": external_id or None,
            "metadata": metadata or {},
            "task_hash": task_hash(task),
        },
        created_at=created_at,
        eval_score=eval_score,
        evaluator=evaluator or (EvaluatorKind.IMPORT if source == "import" else EvaluatorKind.API),
        on_duplicate=OnDuplicate(on_duplicate),
    )
    return _learn(project, draft, actor=actor)


def _learn(project: Project, draft: _Draft, *, actor: Any) -> LearnResult:
    """Embed and run the statement, again with the new model if a re-embedding moved it."""
    embedder = embedder_for(project)
    for _ in range(MODEL_CHANGES):
        vector = embedder.embed_documents([pattern_text(draft.fields["task"])])[0]
        now = timezone.now()
        pattern = Pattern(
            project=project,
            created_at=draft.created_at or now,
            embedding=vector,
            embedding_model=embedder.name,
            **draft.fields,
            **first_evaluation_fields(draft.eval_score, now),
        )
        outcome = run_learn_statement(
            pattern=pattern,
            evaluation=first_evaluation(pattern, draft.eval_score, draft.evaluator, actor, now),
            vector_literal=format_vector(vector),
            dedup=draft.on_duplicate != OnDuplicate.KEEP_BOTH,
            dims=indexed_dimensions(embedder.name),
            threshold=search.EXACT_SEARCH_MAX_ROWS,
            when=now,
        )
        if outcome.model is None:
            raise NotFound(f"Project {project.pk} no longer exists.")
        if outcome.model == embedder.name:
            return _settle(project, draft, outcome, actor=actor, embedded=(embedder, vector))
        # A re-embedding moved the project to another model: embed again with that one.
        project.embedding_model = outcome.model
        embedder = embedder_for(project)
    raise Conflict("The project's embedding model kept changing while learning; try again.")


def _settle(
    project: Project,
    draft: _Draft,
    outcome: Any,
    *,
    actor: Any,
    embedded: tuple[Embedder, list[float]],
) -> LearnResult:
    """The result of the statement's outcome, finishing what it could not do in SQL."""
    if outcome.known is not None:
        return LearnResult(outcome.known, stored=False, duplicate_of=outcome.known)
    if outcome.inserted is not None:
        scope_rows = outcome.scope_rows + 1
        if scope_rows > search.EXACT_SEARCH_MAX_ROWS:
            request_project_index(project, outcome.model, size=scope_rows)
        return LearnResult(outcome.inserted, stored=True, pattern_count=outcome.project_rows + 1)
    if outcome.duplicate is None:
        # Nothing inserted, nothing found: a concurrent learn with the same external_id won.
        existing = Pattern.objects.for_project(project).get(external_id=draft.fields["external_id"])
        return LearnResult(existing.pk, stored=False, duplicate_of=existing.pk)
    if draft.on_duplicate == OnDuplicate.REPLACE_WITH_BETTER:
        return _replace_if_better(project, outcome.duplicate, draft, actor=actor, embedded=embedded)
    return LearnResult(outcome.duplicate, stored=False, duplicate_of=outcome.duplicate)


def _replace_if_better(
    project: Project,
    duplicate_id: int,
    draft: _Draft,
    *,
    actor: Any,
    embedded: tuple[Embedder, list[float]],
) -> LearnResult:
    """Overwrite a duplicate's solution only when the new one scores higher."""
    score = draft.eval_score
    with transaction.atomic():
        existing = Pattern.objects.select_for_update().get(pk=duplicate_id)
        current = existing.eval_score
        if score is None or (current is not None and score <= current):
            return LearnResult(existing.pk, stored=False, duplicate_of=existing.pk)
        embedder, (vector,) = embed_in_current_model(
            project, [pattern_text(draft.fields["task"])], embedded[0], [embedded[1]]
        )
        for name in ("task", "code", "output", "task_hash"):
            setattr(existing, name, draft.fields[name])
        # The model travels with the vector: a re-embedding sweep finds it if the project moved.
        existing.embedding, existing.embedding_model = vector, embedder.name
        if draft.fields["metadata"]:
            existing.metadata = {**existing.metadata, **draft.fields["metadata"]}
        if draft.fields["run_id"]:
            existing.run_id = draft.fields["run_id"]
        existing.save()
        # The old evaluations judged the old solution; the new score stands on its own.
        Evaluation.objects.filter(pattern=existing).delete()
        add_evaluation(pattern=existing, score=score, evaluator=draft.evaluator, actor=actor)
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


__all__ = [
    "MODEL_CHANGES",
    "NEAR_DUPLICATE_SIMILARITY",
    "LearnResult",
    "delete_pattern",
    "first_evaluation",
    "first_evaluation_fields",
    "learn_pattern",
    "normalize_task",
    "refresh_eval_score",
    "update_pattern",
]
