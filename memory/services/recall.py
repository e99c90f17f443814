"""Recall: the project's nearest patterns, ranked by similarity × eval multiplier × recency.

Scope before similarity. Small projects are searched exactly through the project index (cheap
and always complete); large ones through the model's partial HNSW index with pgvector's
iterative scan, so a filtered search still fills its page. Recall never writes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from django.utils import timezone

from engramia_site.db_router import read_connection
from memory.models import INDEXED_EMBEDDING_MODELS, Pattern
from memory.ranking import Ranked, decayed_eval_score, rank, reuse_tier
from memory.services.documents import DocumentMatch, search_documents
from memory.services.embedding import embedder_for
from tenants.models import Project

# Up to this many rows in scope, exact search: always complete, ~1.2 µs a row here
# (docs/benchmarks.md), so at most ~6 ms; above it the planner may take the HNSW index.
EXACT_SEARCH_MAX_ROWS = 5000
# Candidates fetched by similarity before re-ranking by score (eval multipliers span 0.5-1.5).
CANDIDATE_FACTOR = 4
MIN_CANDIDATES = 40
HNSW_EF_SEARCH = 200


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


@functools.cache
def _vector_format(dimensions: int) -> str:
    # Nine significant digits round-trip every float32, which is what pgvector stores.
    return "[" + ",".join(["%.9g"] * dimensions) + "]"


def format_vector(vector: Sequence[float]) -> str:
    """pgvector's text form of a vector, exact for float32, with one `%` for all its floats."""
    return _vector_format(len(vector)) % tuple(vector)


def vector_literal(vector: Sequence[float]) -> str:
    """format_vector, remembered for recent vectors, as query embeddings are.

    A repeated query skips the formatting (50 µs for 384 floats) for a hash lookup (5 µs).
    """
    return _literal(tuple(vector))


@functools.lru_cache(maxsize=1024)
def _literal(vector: tuple[float, ...]) -> str:
    return format_vector(vector)


def _age_days(micros: int | None, now: float) -> float:
    if micros is None:
        return 0.0
    return max(0.0, (now - micros / 1e6) / 86400.0)


@functools.cache
def search_statement(dimensions: int | None, with_source: bool) -> str:
    """One statement for both paths: the size probe picks the branch inside the database.

    The probe counts the scope's rows up to the threshold; a `WHERE` on its result is a one-time
    filter, so PostgreSQL runs only one branch. Exact search orders by the uncast column, which
    no index matches; the HNSW branch casts to the dimension of the model's partial expression
    index (migration 0002) and relies on the session's `hnsw.iterative_scan` (see
    `configure_connection`) to fill the page despite the scope filter. `dimensions=None` (a
    model without an index) has the exact branch only.
    """
    table = Pattern._meta.db_table
    scope = "project_id = %(project)s AND NOT archived AND embedding_model = %(model)s"
    if with_source:
        scope += " AND source = %(source)s"
    exact = (
        f"SELECT {_CANDIDATE_COLUMNS}, embedding <=> %(vector)s::vector AS distance,"  # noqa: S608
        f" 'exact' AS strategy FROM {table} WHERE {scope}"
    )
    if dimensions is None:
        return f"{exact} ORDER BY distance LIMIT %(window)s"
    vector_type = f"vector({int(dimensions)})"
    return f"""
        WITH scope_size AS (
            SELECT count(*) AS n FROM (SELECT 1 FROM {table} WHERE {scope} LIMIT %(probe)s) AS s
        )
        ({exact} AND (SELECT n FROM scope_size) <= %(threshold)s
         ORDER BY distance LIMIT %(window)s)
        UNION ALL
        (SELECT {_CANDIDATE_COLUMNS},
                (embedding::{vector_type}) <=> (%(vector)s::{vector_type}) AS distance,
                'hnsw' AS strategy
           FROM {table} WHERE {scope} AND (SELECT n FROM scope_size) > %(threshold)s
          ORDER BY distance LIMIT %(window)s)
    """  # noqa: S608  (identifiers from model metadata and an int; every value is bound)


def nearest_patterns(
    project: Project, model: str, vector: list[float], window: int, source: str | None = None
) -> tuple[list[Candidate], str]:
    """The project's live patterns nearest to vector, and the path the database took.

    Small scopes (at most EXACT_SEARCH_MAX_ROWS rows) are searched exactly; larger ones through
    the model's HNSW index when PostgreSQL estimates it cheaper. One round trip either way.
    """
    statement = search_statement(INDEXED_EMBEDDING_MODELS.get(model), bool(source))
    params = search_params(project.pk, model, vector, window, source)
    # A raw cursor bypasses the database router: ask it which database serves this read.
    with read_connection(Pattern).cursor() as cursor:
        cursor.execute(statement, params)
        rows = [Candidate(*row) for row in cursor.fetchall()]
    return rows, (rows[0].strategy if rows else "exact")


def search_params(
    project_id: int,
    model: str,
    vector: Sequence[float],
    window: int,
    source: str | None = None,
    threshold: int | None = None,
) -> dict[str, Any]:
    """The values `search_statement` binds (threshold: the exact-search limit, for benchmarks)."""
    threshold = EXACT_SEARCH_MAX_ROWS if threshold is None else threshold
    return {
        "project": project_id,
        "model": model,
        "source": source,
        "vector": vector_literal(vector),
        "window": window,
        "threshold": threshold,
        "probe": threshold + 1,
    }


def configure_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
    """Session settings for HNSW scans, once per database connection (`connection_created`).

    Iterative scans keep a scoped (filtered) HNSW search going until the page is full, and
    `ef_search` covers the largest candidate window (limit 50 x CANDIDATE_FACTOR).
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"SET hnsw.iterative_scan = relaxed_order; SET hnsw.ef_search = {int(HNSW_EF_SEARCH)}"
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
    now = now or timezone.now()
    now_epoch = now.timestamp()
    window = max(MIN_CANDIDATES, limit * CANDIDATE_FACTOR)
    rows, strategy = nearest_patterns(project, embedder.name, vector, window, source)
    scored: list[tuple[float, float, Candidate, Ranked, float | None]] = []
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
        scored.append((round(ranked.score, 6), round(ranked.similarity, 6), row, ranked, effective))
    scored.sort(key=lambda item: (-item[0], -item[1], item[2].id))
    # Only the rows returned become Match objects (the window is 4x the limit).
    matches = [
        Match(
            pattern_id=row.id,
            task=row.task,
            code=row.code,
            output=row.output,
            similarity=similarity,
            eval_score=row.eval_score,
            score=score,
            reuse_tier=reuse_tier(ranked.similarity),
            source=row.source,
            run_id=row.run_id,
            created_at=row.created_at,
            explain=(
                {
                    **ranked.explain(),
                    "eval_score": row.eval_score,
                    "effective_eval_score": effective,
                    "strategy": strategy,
                }
                if explain
                else None
            ),
        )
        for score, similarity, row, ranked, effective in scored[:limit]
    ]
    documents = search_documents(project, vector, limit=limit) if include_documents else []
    return RecallResult(matches=matches, documents=documents, strategy=strategy)


__all__ = [
    "Candidate",
    "Match",
    "RecallResult",
    "configure_connection",
    "format_vector",
    "nearest_patterns",
    "recall_patterns",
    "search_params",
    "search_statement",
    "vector_literal",
]
