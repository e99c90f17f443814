"""What a pattern's vector embeds, and the normalised task that is its dedup key."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SPACE = re.compile(r"\s+")


def normalize_task(task: str) -> str:
    """Casefolded, NFKC, single-spaced, without trailing punctuation: the dedup key's text."""
    text = unicodedata.normalize("NFKC", task).casefold()
    return _SPACE.sub(" ", text).strip().rstrip(".!?;: ")


def task_hash(task: str) -> str:
    """SHA-256 of the normalized task."""
    return hashlib.sha256(normalize_task(task).encode()).hexdigest()


def pattern_text(task: str) -> str:
    """What a pattern's vector embeds: the task, which is what a future recall asks about."""
    return task
