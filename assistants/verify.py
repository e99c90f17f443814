"""Verify an import: is each imported answer recalled in the top 3 for its own question?"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from assistants.importer import collect_pairs, dry_target, group_key
from memory.models import Pattern
from memory.services import recall_patterns
from tenants.models import Project

TOP_K = 3
MAX_REPORTED_MISSES = 100


@dataclass
class VerifySummary:
    """Share of imported questions whose own answer is recalled in the top k."""

    checked: int = 0
    recalled: int = 0
    share: float = 0.0
    misses: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify_import(
    *,
    project: Project,
    stream: IO[bytes],
    group_by: str = "none",
    sample: int | None = None,
    seed: int = 0,
) -> VerifySummary:
    """Recall each (or a sample of) imported question and look for its own pattern in the top k."""
    pairs, _ = collect_pairs(stream)
    if sample is not None and sample < len(pairs):
        pairs = random.Random(seed).sample(pairs, sample)
    summary = VerifySummary()
    targets: dict[str, Project] = {}
    for pair in pairs:
        key = group_key(pair, group_by)
        if key not in targets:
            targets[key] = dry_target(project, pair, group_by)
        target = targets[key]
        summary.checked += 1
        stored = (
            Pattern.objects.for_project(target)
            .filter(external_id=pair.external_id)
            .values("id")
            .first()
            if target.pk
            else None
        )
        if stored is None:
            _miss(summary, pair, "not imported")
            continue
        matches = recall_patterns(project=target, task=pair.question.text, limit=TOP_K).matches
        if any(match.pattern_id == stored["id"] for match in matches):
            summary.recalled += 1
        else:
            _miss(summary, pair, f"not in the top {TOP_K}")
    summary.share = round(summary.recalled / summary.checked, 4) if summary.checked else 0.0
    return summary


def _miss(summary: VerifySummary, pair: Any, reason: str) -> None:
    if len(summary.misses) < MAX_REPORTED_MISSES:
        summary.misses.append(
            {
                "external_id": pair.external_id,
                "thread_id": pair.thread_id,
                "question": pair.question.text[:200],
                "reason": reason,
            }
        )
