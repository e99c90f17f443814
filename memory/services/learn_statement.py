"""Learn in one round trip: the duplicate checks, the insert, its evaluation and audit entries.

One SQL statement with data-modifying CTEs (PostgreSQL runs it atomically):

1. reads the project's embedding model with a FOR KEY SHARE lock (as
   `retrieval.pinned_model.embed_in_current_model` does), so a re-embedding swap either waits
   for this statement's transaction or has committed, in which case nothing is inserted and
   the caller embeds again with the model the statement reports;
2. looks for a pattern with the same external id, then (when `on_duplicate` needs it) a live
   one with the same normalized task, and only when there is none the nearest live vector of
   the scope (the recall statement's exact or HNSW search, window 1);
3. inserts the pattern, its first evaluation (its score is then the pattern's aggregate, so
   the row is written with it rather than re-read), and the audit entries auditlog would have
   written for both, stamped by `tenants.audit.fill_audit_context` with the actor, key name and
   request id;
4. reads the scope's and the project's live-row counts (memory.models.ScopeSize) as they were
   before this statement (its own row is counted by the trigger when the statement ends).

With a duplicate search through HNSW possible, the statement runs with its own
`hnsw.ef_search` set and restored in the same query string (`retrieval.search.
execute_with_ef_search`: one round trip): the probe wants one neighbour at cosine ≥ 0.97, which
DEDUP_EF_SEARCH candidates find, not the 100-200 recall needs (the HNSW probe costs ~0.5
instead of ~3 ms at 10k rows).

The rows are built as model instances in Python and their column values taken with Django's
own field conversions, so a column added to a model is written here too.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.db import connection

from memory.models import Evaluation, Pattern
from retrieval.search import execute_with_ef_search, scoped_nearest_statement
from tenants.models import Project
from tenants.statements import audit_entry, audit_insert, audit_values, insert_select, values

# Above this cosine similarity a new task is a near-duplicate of a stored one.
NEAR_DUPLICATE_SIMILARITY = 0.97
# The HNSW candidate list of the duplicate probe (recall's: ef_search_for). Near-duplicates
# made at cosine 0.975 of 400 stored vectors (10k rows, hash:384) were all found at 10 already.
DEDUP_EF_SEARCH = 20

_SCOPE = "project_id = %(project)s AND NOT archived AND embedding_model = %(model)s"
_SCOPE_ROWS = (
    "SELECT coalesce((SELECT live_rows FROM memory_scopesize"
    " WHERE project_id = %(project)s AND embedding_model = %(model)s), 0)"
)


@dataclass(frozen=True)
class StatementOutcome:
    """What the statement found and did."""

    model: str | None  # the project's model now (None: the project is gone)
    inserted: int | None
    known: int | None  # a pattern with the same external id
    duplicate: int | None
    scope_rows: int  # the scope's live rows before this statement
    project_rows: int  # the project's live rows (every model) before this statement


# Columns the statement writes itself: never bound from the instance.
_OWN = {
    "p": frozenset({"embedding"}),
    "e": frozenset({"pattern_id"}),
}


@functools.cache
def learn_statement(*, dedup: bool, external_id: bool, evaluated: bool, dims: int | None) -> str:
    """The statement for one combination of what learn needs (cached: identifiers only)."""
    known = (
        "SELECT min(id) AS id FROM memory_pattern"
        " WHERE project_id = %(project)s AND external_id = %(external_id)s"
        if external_id
        else "SELECT NULL::bigint AS id"
    )
    near = scoped_nearest_statement(
        table=Pattern._meta.db_table, columns="id", scope=_SCOPE, dimensions=dims, size=_SCOPE_ROWS
    )
    duplicate = (
        "SELECT coalesce((SELECT id FROM memory_pattern"  # noqa: S608
        " WHERE project_id = %(project)s"
        " AND NOT archived AND task_hash = %(digest)s ORDER BY id LIMIT 1),"
        f" (SELECT id FROM ({near}) AS near WHERE 1.0 - distance >= %(similarity)s"
        " ORDER BY distance LIMIT 1)) AS id"
        if dedup
        else "SELECT NULL::bigint AS id"
    )
    parts = [
        f"project AS (SELECT embedding_model AS model FROM {Project._meta.db_table}"  # noqa: S608
        " WHERE id = %(project)s FOR KEY SHARE)",
        f"known AS ({known})",
        f"duplicate AS ({duplicate})",
        f"inserted AS ({insert_select(Pattern, 'p', {'embedding': '%(vector)s::vector'})}"  # noqa: S608
        " WHERE (SELECT model FROM project) = %(model)s AND (SELECT id FROM known) IS NULL"
        " AND (SELECT id FROM duplicate) IS NULL"
        " ON CONFLICT (project_id, external_id) WHERE external_id IS NOT NULL DO NOTHING"
        " RETURNING id)",
        f"pattern_audit AS ({audit_insert('inserted', 'a')})",
    ]
    if evaluated:
        evaluation = insert_select(Evaluation, "e", {"pattern_id": "inserted.id"}, "inserted")
        parts += [
            f"evaluated AS ({evaluation} RETURNING id, pattern_id)",
            f"evaluation_audit AS ({audit_insert('evaluated', 'b', new_fks=('pattern_id',))})",
        ]
    statement = (
        "WITH "  # noqa: S608  (identifiers from model metadata; every value is bound)
        + ",\n".join(parts)
        + "\nSELECT (SELECT model FROM project),"  # noqa: S608
        " (SELECT id FROM inserted), (SELECT id FROM known), (SELECT id FROM duplicate),"
        f" ({_SCOPE_ROWS}), (SELECT coalesce(sum(live_rows), 0)::bigint FROM memory_scopesize"
        " WHERE project_id = %(project)s)"
    )
    return statement


def _row_params(pattern: Pattern, evaluation: Evaluation | None, when: Any) -> dict[str, Any]:
    """The bound values of the rows the statement may insert."""
    params = {
        **values(pattern, "p", _OWN["p"]),
        **audit_values(audit_entry(pattern, when), "a"),
    }
    if evaluation is not None:
        params.update(values(evaluation, "e", _OWN["e"]))
        params.update(audit_values(audit_entry(evaluation, when), "b"))
    return params


def run_learn_statement(
    *,
    pattern: Pattern,
    evaluation: Evaluation | None,
    vector_literal: str,
    dedup: bool,
    dims: int | None,
    threshold: int,
    when: Any,
) -> StatementOutcome:
    """Run the statement for an unsaved pattern (and its first evaluation); one round trip."""
    params: dict[str, Any] = {
        "project": pattern.project_id,
        "model": pattern.embedding_model,
        "external_id": pattern.external_id,
        "digest": pattern.task_hash,
        "vector": vector_literal,
        "similarity": NEAR_DUPLICATE_SIMILARITY,
        "window": 1,
        "threshold": threshold,
        "probe": threshold + 1,
        **_row_params(pattern, evaluation, when),
    }
    statement = learn_statement(
        dedup=dedup,
        external_id=bool(pattern.external_id),
        evaluated=evaluation is not None,
        dims=dims,
    )
    with connection.cursor() as cursor:
        if dedup and dims is not None:  # the duplicate probe may search through HNSW
            execute_with_ef_search(cursor, statement, params, DEDUP_EF_SEARCH)
        else:
            cursor.execute(statement, params)
        row = cursor.fetchone()
    return StatementOutcome(*row)


__all__ = [
    "DEDUP_EF_SEARCH",
    "NEAR_DUPLICATE_SIMILARITY",
    "StatementOutcome",
    "learn_statement",
    "run_learn_statement",
]
