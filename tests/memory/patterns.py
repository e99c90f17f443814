"""Bulk-made patterns for tests that need a scope of a given size (no duplicate checks)."""

from __future__ import annotations

import random
from typing import Any

from memory.models import Pattern
from retrieval.pinned_model import embedder_for

WORDS = "alpha beta gamma delta sigma omega kappa theta zeta csv json parse render deploy queue"


def fill(project: Any, count: int, seed: int = 7) -> None:
    """count distinct patterns of six random words each, bulk-inserted into project."""
    rng = random.Random(seed)
    words = WORDS.split()
    embedder = embedder_for(project)
    tasks = [" ".join(rng.choice(words) for _ in range(6)) + f" #{i}" for i in range(count)]
    Pattern.objects.bulk_create(
        Pattern(
            project=project,
            task=text,
            code="c",
            task_hash=f"{seed}-{index}",
            embedding=vector,
            embedding_model=embedder.name,
        )
        for index, (text, vector) in enumerate(
            zip(tasks, embedder.embed_documents(tasks), strict=True)
        )
    )
