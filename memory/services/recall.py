"""Recall: the project's nearest patterns, ranked by similarity × eval multiplier × recency.

Scope before similarity. Small projects are searched exactly through the project index (cheap
and always complete); large ones through the model's partial HNSW index with pgvector's
iterative scan, so a filtered search still fills its page. Recall never writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models.functions import Cast
from django.utils import timezone
from pgvector.django import CosineDistance, VectorField

from memory.models import INDEXED_EMBEDDING_MODELS, Pattern
from memory.ranking import decayed_eval_score, rank, reuse_tier
from memory.services.documents import DocumentMatch, search_documents
from memory.services.embedding import embedder_for
from tenants.models import Project

# Below this many candidate rows exact search is both faster and exact (~3 µs a row here).
EXACT_SEARCH_MAX_ROWS = 5000
# Candidates fetched by similarity before re-ranking by score (eval multipliers span 0.5-1.5).
CANDIDATE_FACTOR = 4
MIN_CANDIDATES = 40
HNSW_EF_SEARCH = 200

RECALL_FIELDS = (
    "id",
    "task",
    "code",
    "output",
    "source",
    "run_id",
    "created_at",
    "eval_score",
    "last_evaluated_at",
    "metadata",
)


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


def _age_days(moment: datetime | None, now: datetime) -> float:
    if moment is None:
        return 0.0
    return max(0.0, (now - moment).total_seconds() / 86400.0)


def nearest_patterns(
    project: Project, model: str, vector: list[float], window: int, source: str | None = None
) -> tuple[list[Pattern], str]:
    """The project's live patterns nearest to vector (annotated with distance), and the path."""
    base = Pattern.objects.filter(project_id=project.pk, archived=False, embedding_model=model)
    if source:
        base = base.filter(source=source)
    size = base.values("id")[: EXACT_SEARCH_MAX_ROWS + 1].count()
    if size <= EXACT_SEARCH_MAX_ROWS or model not in INDEXED_EMBEDDING_MODELS:
        # `embedding <=> q` does not match the expression index, so this stays exact.
        rows = (
            base.annotate(distance=CosineDistance("embedding", vector))
            .only(*RECALL_FIELDS)
            .order_by("distance")[:window]
        )
        return list(rows), "exact"
    dimensions = INDEXED_EMBEDDING_MODELS[model]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute(f"SET LOCAL hnsw.ef_search = {int(max(HNSW_EF_SEARCH, window))}")
        rows = (
            base.annotate(
                distance=CosineDistance(
                    Cast("embedding", VectorField(dimensions=dimensions)), vector
                )
            )
            .only(*RECALL_FIELDS)
            .order_by("distance")[:window]
        )
        return list(rows), "hnsw"


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
    window = max(MIN_CANDIDATES, limit * CANDIDATE_FACTOR)
    rows, strategy = nearest_patterns(project, embedder.name, vector, window, source)
    scored: list[Match] = []
    for row in rows:
        effective = decayed_eval_score(row.eval_score, _age_days(row.last_evaluated_at, now))
        ranked = rank(
            distance=row.distance,  # type: ignore[attr-defined]
            eval_score=effective,
            age_days=_age_days(row.created_at, now),
            eval_weighted=eval_weighted,
            recency_weight=recency_weight,
        )
        if min_similarity is not None and ranked.similarity < min_similarity:
            continue
        details = None
        if explain:
            details = {
                **ranked.explain(),
                "eval_score": row.eval_score,
                "effective_eval_score": effective,
                "strategy": strategy,
            }
        scored.append(
            Match(
                pattern_id=row.pk,
                task=row.task,
                code=row.code,
                output=row.output,
                similarity=round(ranked.similarity, 6),
                eval_score=row.eval_score,
                score=round(ranked.score, 6),
                reuse_tier=reuse_tier(ranked.similarity),
                source=row.source,
                run_id=row.run_id,
                created_at=row.created_at,
                explain=details,
            )
        )
    scored.sort(key=lambda match: (-match.score, -match.similarity, match.pattern_id))
    documents = search_documents(project, vector, limit=limit) if include_documents else []
    return RecallResult(matches=scored[:limit], documents=documents, strategy=strategy)


__all__ = ["Match", "RecallResult", "nearest_patterns", "recall_patterns"]
