"""Recall: the project's nearest patterns, ranked by similarity × eval multiplier × recency.

Scope before similarity: the project's live rows of its model, searched exactly or through HNSW
by `retrieval.search`'s one statement. Recall never writes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from django.utils import timezone

from engramia_site.db_router import read_connection
from memory.models import Pattern
from memory.services.documents import DocumentMatch, search_documents
from retrieval.pinned_model import embedder_for
from retrieval.ranking import Ranked, decayed_eval_score, rank, reuse_tier
from retrieval.search import (
    ef_search_for,
    execute_with_ef_search,
    indexed_dimensions,
    scoped_nearest_statement,
)
from retrieval.search import search_params as scoped_search_params
from tenants.models import Project

# Candidates fetched by similarity before re-ranking by score (eval multipliers span 0.5-1.5).
CANDIDATE_FACTOR = 4
MIN_CANDIDATES = 40


@dataclass(frozen=True)
class Match:
    """One recalled pattern with its score and the factors behind it."""

    pattern_id: int
    task: str
    code: str
    output: str
    similarity: float
    eval_score: float | None
    score: float
    reuse_tier: str
    source: str
    run_id: str
    created_at: datetime
    explain: dict[str, Any] | None = None


@dataclass(frozen=True)
class RecallResult:
    """Ranked matches, and document chunks when asked for."""

    matches: list[Match]
    documents: list[DocumentMatch] = field(default_factory=list)
    strategy: str = "exact"
    documents_searched: bool = False


class Candidate(NamedTuple):
    """A pattern row as the nearest-neighbour search returns it (never its vector).

    Times come as integer microseconds since the epoch (exact): parsing 40 timestamps per
    recall would cost more than the ranking.
    """

    id: int
    task: str
    code: str
    output: str
    source: str
    run_id: str
    created: int
    eval_score: float | None
    last_evaluated: int | None
    distance: float
    strategy: str

    @property
    def created_at(self) -> datetime:
        return _EPOCH + timedelta(microseconds=self.created)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CANDIDATE_COLUMNS = (
    "id, task, code, output, source, run_id, "
    "(extract(epoch FROM created_at) * 1000000)::int8, eval_score, "
    "(extract(epoch FROM last_evaluated_at) * 1000000)::int8"
)


def _age_days(micros: int | None, now: float) -> float:
    if micros is None:
        return 0.0
    return max(0.0, (now - micros / 1e6) / 86400.0)


_SCOPE = "project_id = %(project)s AND NOT archived AND embedding_model = %(model)s"
# The scope's size as the writes keep it (memory.models.ScopeSize): one index lookup.
_KEPT_SIZE = (
    "SELECT coalesce((SELECT live_rows FROM memory_scopesize"
    " WHERE project_id = %(project)s AND embedding_model = %(model)s), 0)"
)
# Rows of the model the caller embedded with only while the project still uses it: a caller
# holding an older copy of the project (the SDK keeps one) gets no rows, and re-reads it.
_MODEL_GUARD = (
    f"EXISTS (SELECT 1 FROM {Project._meta.db_table}"  # noqa: S608
    " WHERE id = %(project)s AND embedding_model = %(model)s)"
)


@functools.cache
def search_statement(dimensions: int | None, with_source: bool) -> str:
    """The nearest-pattern statement for a model of this dimension (None: no index).

    Without a source filter the scope is exactly what ScopeSize counts; a source narrows it,
    so its rows are counted by the statement's probe.
    """
    scope = _SCOPE + (" AND source = %(source)s" if with_source else "")
    return scoped_nearest_statement(
        table=Pattern._meta.db_table,
        columns=_CANDIDATE_COLUMNS,
        scope=scope,
        dimensions=dimensions,
        size=None if with_source else _KEPT_SIZE,
        guard=_MODEL_GUARD,
    )


def nearest_patterns(
    project: Project, model: str, vector: list[float], window: int, source: str | None = None
) -> tuple[list[Candidate], str]:
    """The project's live patterns nearest to vector, and the path the database took.

    Small scopes are searched exactly; larger ones through the model's HNSW index when
    PostgreSQL estimates it cheaper, with the `hnsw.ef_search` the window needs. One round
    trip either way. No rows either means none match or that the project has moved to another
    model than `model` (see `current_model`).
    """
    dimensions = indexed_dimensions(model)
    statement = search_statement(dimensions, bool(source))
    params = search_params(project.pk, model, vector, window, source)
    # A raw cursor bypasses the database router: ask it which database serves this read.
    with read_connection(Pattern).cursor() as cursor:
        if dimensions is None:
            cursor.execute(statement, params)
        else:
            execute_with_ef_search(cursor, statement, params, ef_search_for(window))
        rows = [Candidate(*row) for row in cursor.fetchall()]
    return rows, (rows[0].strategy if rows else "exact")


def current_model(project: Project) -> str:
    """The project's embedding model as stored now (the copy in hand may be older)."""
    model = Project.objects.filter(pk=project.pk).values_list("embedding_model", flat=True).first()
    return model or project.embedding_model


def search_params(
    project_id: int,
    model: str,
    vector: list[float],
    window: int,
    source: str | None = None,
    threshold: int | None = None,
) -> dict[str, Any]:
    """The values `search_statement` binds (threshold: the exact-search limit, for benchmarks)."""
    return scoped_search_params(
        model=model,
        vector=vector,
        window=window,
        threshold=threshold,
        project=project_id,
        source=source,
    )


class Scored(NamedTuple):
    """A candidate with its rounded score and similarity, the factors, and the decayed eval."""

    score: float
    similarity: float
    row: Candidate
    ranked: Ranked
    effective_eval: float | None


def score_candidates(
    rows: list[Candidate],
    *,
    now_epoch: float,
    eval_weighted: bool = True,
    recency_weight: float = 0.0,
    min_similarity: float | None = None,
) -> list[Scored]:
    """Rank candidates best first: score, then similarity, then the older pattern."""
    scored: list[Scored] = []
    for row in rows:
        effective = (
            None
            if row.eval_score is None
            else decayed_eval_score(row.eval_score, _age_days(row.last_evaluated, now_epoch))
        )
        ranked = rank(
            distance=row.distance,
            eval_score=effective,
            age_days=_age_days(row.created, now_epoch) if recency_weight else 0.0,
            eval_weighted=eval_weighted,
            recency_weight=recency_weight,
        )
        if min_similarity is not None and ranked.similarity < min_similarity:
            continue
        scored.append(
            Scored(round(ranked.score, 6), round(ranked.similarity, 6), row, ranked, effective)
        )
    scored.sort(key=lambda item: (-item.score, -item.similarity, item.row.id))
    return scored


def _match(item: Scored, strategy: str | None) -> Match:
    """A scored candidate as a Match; with strategy given, explained factor by factor."""
    row = item.row
    explain = None
    if strategy is not None:
        explain = {
            **item.ranked.explain(),
            "eval_score": row.eval_score,
            "effective_eval_score": item.effective_eval,
            "strategy": strategy,
        }
    return Match(
        pattern_id=row.id,
        task=row.task,
        code=row.code,
        output=row.output,
        similarity=item.similarity,
        eval_score=row.eval_score,
        score=item.score,
        reuse_tier=reuse_tier(item.ranked.similarity),
        source=row.source,
        run_id=row.run_id,
        created_at=row.created_at,
        explain=explain,
    )


def recall_patterns(
    *,
    project: Project,
    task: str,
    limit: int = 5,
    eval_weighted: bool = True,
    recency_weight: float = 0.0,
    min_similarity: float | None = None,
    source: str | None = None,
    explain: bool = False,
    include_documents: bool = False,
    now: datetime | None = None,
) -> RecallResult:
    """The most useful patterns of the project for a task; read-only."""
    embedder = embedder_for(project)
    vector = embedder.embed_query(task)
    now_epoch = (now or timezone.now()).timestamp()
    window = max(MIN_CANDIDATES, limit * CANDIDATE_FACTOR)
    rows, strategy = nearest_patterns(project, embedder.name, vector, window, source)
    if not rows and (model := current_model(project)) != embedder.name:
        # The project moved to another model since this copy of it was read: follow it.
        project.embedding_model = model
        embedder = embedder_for(project)
        vector = embedder.embed_query(task)
        rows, strategy = nearest_patterns(project, embedder.name, vector, window, source)
    scored = score_candidates(
        rows,
        now_epoch=now_epoch,
        eval_weighted=eval_weighted,
        recency_weight=recency_weight,
        min_similarity=min_similarity,
    )
    # Only the rows returned become Match objects (the window is 4x the limit).
    matches = [_match(item, strategy if explain else None) for item in scored[:limit]]
    documents = search_documents(project, vector, limit=limit) if include_documents else []
    return RecallResult(
        matches=matches,
        documents=documents,
        strategy=strategy,
        documents_searched=include_documents,
    )


__all__ = [
    "Candidate",
    "Match",
    "RecallResult",
    "Scored",
    "current_model",
    "nearest_patterns",
    "recall_patterns",
    "score_candidates",
    "search_params",
    "search_statement",
]
