"""Typed results of the SDK (Django-free), the same in local and remote mode."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["EvalResult", "FeedbackItem", "LearnResult", "Match", "parse_timestamp"]


def parse_timestamp(value: Any) -> datetime | None:
    """A datetime from an API value (ISO 8601 or epoch seconds); naive times are UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, bool):
        raise ValueError("a timestamp cannot be a boolean")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), tz=UTC)
    text = str(value).strip()
    try:
        return datetime.fromtimestamp(float(text), tz=UTC)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class LearnResult:
    """What learn did: the pattern stored (or matched), and the duplicate it found."""

    pattern_id: int
    stored: bool
    duplicate_of: int | None = None
    replaced: bool = False
    pattern_count: int | None = None

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> LearnResult:
        """Build from a POST /v1/learn answer."""
        return cls(
            pattern_id=int(body["pattern_id"]),
            stored=bool(body["stored"]),
            duplicate_of=_optional_int(body.get("duplicate_of")),
            replaced=bool(body.get("replaced", False)),
            pattern_count=_optional_int(body.get("pattern_count")),
        )


@dataclass(frozen=True)
class Match:
    """One recalled pattern: its solution, and the score that ranked it."""

    pattern_id: int
    task: str
    code: str
    output: str
    similarity: float
    eval_score: float | None
    score: float
    reuse_tier: str
    source: str = ""
    run_id: str = ""
    created_at: datetime | None = None
    explain: dict[str, Any] | None = None

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> Match:
        """Build from one entry of a POST /v1/recall answer."""
        eval_score = body.get("eval_score")
        return cls(
            pattern_id=int(body["pattern_id"]),
            task=str(body.get("task", "")),
            code=str(body.get("code", "")),
            output=str(body.get("output") or ""),
            similarity=float(body["similarity"]),
            eval_score=None if eval_score is None else float(eval_score),
            score=float(body["score"]),
            reuse_tier=str(body.get("reuse_tier", "")),
            source=str(body.get("source", "")),
            run_id=str(body.get("run_id") or ""),
            created_at=parse_timestamp(body.get("created_at")),
            explain=body.get("explain"),
        )


@dataclass(frozen=True)
class EvalResult:
    """An LLM judge's verdict: the median of `num_evals` grades, their spread and feedback."""

    median_score: float
    scores: list[float] = field(default_factory=list)
    spread: float = 0.0
    feedback: str = ""
    evaluator: str = ""
    pattern_id: int | None = None

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> EvalResult:
        """Build from a POST /v1/evaluate answer."""
        return cls(
            median_score=float(body["median_score"]),
            scores=[float(score) for score in body.get("scores", [])],
            spread=float(body.get("spread", 0.0)),
            feedback=str(body.get("feedback") or ""),
            evaluator=str(body.get("evaluator") or ""),
            pattern_id=_optional_int(body.get("pattern_id")),
        )


@dataclass(frozen=True)
class FeedbackItem:
    """Recurring evaluator feedback: how often it was given and when last."""

    feedback: str
    count: int
    last_seen: datetime | None = None

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> FeedbackItem:
        """Build from one entry of a GET /v1/feedback answer."""
        return cls(
            feedback=str(body.get("feedback") or ""),
            count=int(body.get("count", 0)),
            last_seen=parse_timestamp(body.get("last_seen")),
        )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)
