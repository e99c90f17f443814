"""The kinds of rows that carry a vector of their project's embedding model.

Apps register theirs in `AppConfig.ready()` (as job kinds register), so re-embedding a project
reaches every kind of row while the re-embedding code imports none of the apps that own them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import models


@dataclass(frozen=True)
class EmbeddedRows:
    """A kind of row with `project`, `embedding` and `embedding_model`, and the text it embeds."""

    kind: str
    model: type[models.Model]
    fields: tuple[str, ...]
    text: Callable[[Any], str]

    def of(self, project_id: int) -> models.QuerySet[Any]:
        """The project's rows of this kind."""
        return self.model._default_manager.filter(project_id=project_id)


_registered: dict[str, EmbeddedRows] = {}


def register_embedded_rows(rows: EmbeddedRows) -> None:
    """Add a kind of embedded row (idempotent for the same model; a clash is an error)."""
    existing = _registered.get(rows.kind)
    if existing is not None and existing.model is not rows.model:
        raise ValueError(f"embedded row kind {rows.kind!r} is already {existing.model.__name__}")
    if len(rows.kind) > 16:
        raise ValueError("an embedded row kind is at most 16 characters")
    _registered[rows.kind] = rows


def embedded_rows() -> tuple[EmbeddedRows, ...]:
    """Every registered kind, in registration order (a re-embedding checkpoint relies on it)."""
    return tuple(_registered.values())


__all__ = ["EmbeddedRows", "embedded_rows", "register_embedded_rows"]
