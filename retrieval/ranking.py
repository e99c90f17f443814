"""Ranking math for recall (Django-free): score = similarity × eval_multiplier × recency.

Each factor is explainable per result. An unrated item gets a neutral multiplier of 1.0, which
is also what a neutral score of 5/10 gives, so importing history with the default score does not
reorder it. Decay is a pure function of age, so applying it twice changes nothing.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import NamedTuple

NEUTRAL_SCORE = 5.0
RECENT_EVALUATIONS = 10
RECENCY_HALF_LIFE_DAYS = 90.0
EVAL_DECAY_HALF_LIFE_DAYS = 180.0
DUPLICATE_SIMILARITY = 0.92
ADAPT_SIMILARITY = 0.70


def aggregate_eval_score(scores_newest_first: Sequence[float]) -> float | None:
    """A robust score from an item's own evaluations: the median of the most recent ones."""
    recent = [float(score) for score in scores_newest_first[:RECENT_EVALUATIONS]]
    if not recent:
        return None
    return round(statistics.median(recent), 4)


def eval_multiplier(eval_score: float | None) -> float:
    """0.5 at score 0, 1.0 at 5 (and for unrated items), 1.5 at 10."""
    if eval_score is None:
        return 1.0
    clamped = min(10.0, max(0.0, float(eval_score)))
    return 0.5 + clamped / 10.0


def decayed_eval_score(eval_score: float | None, age_days: float) -> float | None:
    """The score pulled toward neutral by the age of its evidence (a function of age only)."""
    if eval_score is None:
        return None
    factor = 0.5 ** (max(0.0, age_days) / EVAL_DECAY_HALF_LIFE_DAYS)
    return round(NEUTRAL_SCORE + (float(eval_score) - NEUTRAL_SCORE) * factor, 4)


def recency_factor(age_days: float, recency_weight: float) -> float:
    """1.0 when recency does not matter; with weight w, blends in a 90-day half-life."""
    weight = min(1.0, max(0.0, recency_weight))
    if weight == 0.0:
        return 1.0
    return (1.0 - weight) + weight * 0.5 ** (max(0.0, age_days) / RECENCY_HALF_LIFE_DAYS)


def reuse_tier(similarity: float) -> str:
    """duplicate (reuse as is), adapt (start from it) or fresh (only loosely related)."""
    if similarity >= DUPLICATE_SIMILARITY:
        return "duplicate"
    if similarity >= ADAPT_SIMILARITY:
        return "adapt"
    return "fresh"


class Ranked(NamedTuple):
    """One candidate's score and the factors that made it (a tuple: recall ranks 40 a query)."""

    similarity: float
    eval_multiplier: float
    recency: float
    score: float

    def explain(self) -> dict[str, float]:
        return {
            "similarity": round(self.similarity, 6),
            "eval_multiplier": round(self.eval_multiplier, 6),
            "recency": round(self.recency, 6),
            "score": round(self.score, 6),
        }


def rank(
    *,
    distance: float,
    eval_score: float | None,
    age_days: float,
    eval_weighted: bool = True,
    recency_weight: float = 0.0,
) -> Ranked:
    """Score one candidate from its cosine distance, eval score and age."""
    similarity = max(0.0, min(1.0, 1.0 - float(distance)))
    multiplier = eval_multiplier(eval_score) if eval_weighted else 1.0
    recency = recency_factor(age_days, recency_weight)
    return Ranked(similarity, multiplier, recency, similarity * multiplier * recency)
