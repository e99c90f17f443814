""" "Why not this one?": one pattern's score and rank for a recall query, and why it was left out.

The same pieces recall uses (the project's embedder, `nearest_patterns`, `score_candidates`), so
the answer is the score recall would have given it. Read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from engramia_site.errors import NotFound
from memory.models import Pattern
from memory.services.recall import (
    CANDIDATE_FACTOR,
    MIN_CANDIDATES,
    Candidate,
    Scored,
    nearest_patterns,
    score_candidates,
)
from retrieval.pinned_model import embedder_for
from retrieval.ranking import reuse_tier
from retrieval.search import cosine_distance
from tenants.models import Project


@dataclass(frozen=True)
class RankExplanation:
    """Where one pattern stands for a query: its factors, its rank, and why recall left it out."""

    pattern_id: int
    task: str
    similarity: float
    eval_multiplier: float
    recency: float
    score: float
    reuse_tier: str
    rank: int | None  # 1-based among the candidates recall looked at; None: not among them
    candidates: int  # how many candidates recall looked at
    returned: bool  # within the limit: recall returns it
    reasons: list[str]


def _micros(moment: object) -> int | None:
    if moment is None:
        return None
    return int(moment.timestamp() * 1_000_000)  # type: ignore[attr-defined]


def explain_pattern_rank(
    *,
    project: Project,
    task: str,
    pattern_id: int,
    limit: int = 5,
    eval_weighted: bool = True,
    recency_weight: float = 0.0,
    min_similarity: float | None = None,
) -> RankExplanation:
    """Score pattern_id of project for task as recall would, and rank it among recall's window."""
    embedder = embedder_for(project)
    vector = embedder.embed_query(task)
    pattern = Pattern.objects.for_project(project).filter(pk=pattern_id).defer("embedding").first()
    if pattern is None:
        raise NotFound(f"Pattern {pattern_id} does not exist in {project.path}.")
    reasons: list[str] = []
    if pattern.archived:
        reasons.append("It is archived: recall returns live patterns only.")
    candidate = _as_candidate(pattern, vector, embedder.name, reasons)
    now_epoch = timezone.now().timestamp()
    own: Scored = score_candidates(
        [candidate], now_epoch=now_epoch, eval_weighted=eval_weighted, recency_weight=recency_weight
    )[0]
    window = max(MIN_CANDIDATES, limit * CANDIDATE_FACTOR)
    rows, _strategy = nearest_patterns(project, embedder.name, vector, window)
    ranked = score_candidates(
        rows,
        now_epoch=now_epoch,
        eval_weighted=eval_weighted,
        recency_weight=recency_weight,
        min_similarity=min_similarity,
    )
    position = next((i for i, item in enumerate(ranked) if item.row.id == pattern_id), None)
    reasons += _why_not(
        own, ranked, rows, position, limit=limit, min_similarity=min_similarity, known=bool(reasons)
    )
    factors = own.ranked
    return RankExplanation(
        pattern_id=pattern_id,
        task=pattern.task,
        similarity=own.similarity,
        eval_multiplier=round(factors.eval_multiplier, 6),
        recency=round(factors.recency, 6),
        score=own.score,
        reuse_tier=reuse_tier(own.similarity),
        rank=position + 1 if position is not None else None,
        candidates=len(rows),
        returned=position is not None and position < limit,
        reasons=reasons,
    )


def _as_candidate(pattern: Pattern, vector: Any, model: str, reasons: list[str]) -> Candidate:
    """The pattern as a recall candidate, its distance measured when its vector is comparable."""
    distance = 1.0
    if pattern.embedding_model != model:
        reasons.append(
            f"Its vector is from {pattern.embedding_model}, not the project's {model}: "
            "recall searches the project's model only (re-embed the project)."
        )
    else:
        measured = (
            Pattern.objects.filter(pk=pattern.pk)
            .annotate(distance=cosine_distance(vector, None))
            .values_list("distance", flat=True)
            .first()
        )
        distance = float(measured) if measured is not None else 1.0
    return Candidate(
        pattern.pk,
        pattern.task,
        pattern.code,
        pattern.output,
        pattern.source,
        pattern.run_id,
        _micros(pattern.created_at) or 0,
        pattern.eval_score,
        _micros(pattern.last_evaluated_at),
        distance,
        "exact",
    )


def _why_not(
    own: Scored,
    ranked: list[Scored],
    rows: list[Any],
    position: int | None,
    *,
    limit: int,
    min_similarity: float | None,
    known: bool,
) -> list[str]:
    """Why recall would not return the pattern (nothing when it would); known: a reason exists."""
    if min_similarity is not None and own.similarity < min_similarity:
        return [f"Its similarity {own.similarity:.3f} is below the minimum {min_similarity:.3f}."]
    if position is None and not known:
        return [
            f"It is not among the {len(rows)} nearest patterns recall ranks: the least similar "
            f"of those has similarity {1.0 - rows[-1].distance:.3f}."
            if rows
            else "The search found no candidates."
        ]
    if position is not None and position >= limit:
        better = ranked[limit - 1]
        return [
            f"It ranks {position + 1}: below the limit of {limit}; the last match returned "
            f"scores {better.score:.3f} against its {own.score:.3f}."
        ]
    return []
