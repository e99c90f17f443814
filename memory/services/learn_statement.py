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

from auditlog.diff import model_instance_diff
from auditlog.models import LogEntry as BaseLogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Model

from memory.models import Evaluation, Pattern
from retrieval.search import execute_with_ef_search, scoped_nearest_statement
from tenants.audit import fill_audit_context
from tenants.models import AuditEntry, Project

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


def _columns(model: type[Model], prefix: str) -> list[tuple[str, str, str]]:
    """(column, parameter name, SQL type) of every concrete column but the id."""
    return [
        (str(field.column), f"{prefix}_{field.column}", field.cast_db_type(connection) or "")
        for field in model._meta.concrete_fields
        if not field.primary_key
    ]


def _values(instance: Model, prefix: str, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The instance's column values as an INSERT binds them (auto_now fields filled)."""
    return {
        f"{prefix}_{field.column}": field.get_db_prep_save(
            field.pre_save(instance, True), connection
        )
        for field in instance._meta.concrete_fields
        if not field.primary_key and field.column not in skip
    }


def _select_list(model: type[Model], prefix: str, overrides: dict[str, str]) -> tuple[str, str]:
    """`(col, …)` and the matching `%(param)s::type, …` with some columns given as SQL."""
    columns, values = [], []
    for column, name, db_type in _columns(model, prefix):
        columns.append(column)
        values.append(overrides.get(column, f"%({name})s::{db_type}"))
    return ", ".join(columns), ", ".join(values)


def _audit_insert(source: str, prefix: str, fk_column: str | None) -> str:
    """INSERT of one audit entry per row of `source` (a CTE returning `id` and maybe a FK).

    auditlog leaves out fields that are None before the insert, i.e. the id and the FK to the
    row inserted alongside; the statement adds them as auditlog would have written them.
    """
    changes = f"%({prefix}_changes)s::jsonb || {_pair('id', f'{source}.id')}"
    if fk_column is not None:
        changes += f" || {_pair(fk_column.removesuffix('_id'), f'{source}.{fk_column}')}"
    columns, values = _select_list(
        AuditEntry,
        prefix,
        {"object_pk": f"{source}.id::text", "object_id": f"{source}.id", "changes": changes},
    )
    return f"INSERT INTO {AuditEntry._meta.db_table} ({columns}) SELECT {values} FROM {source}"  # noqa: S608


def _pair(name: str, value: str) -> str:
    return f"jsonb_build_object('{name}', jsonb_build_array('None', {value}::text))"


# Columns the statement writes itself: never bound from the instance.
_OWN = {
    "p": frozenset({"embedding"}),
    "a": frozenset({"object_pk", "object_id"}),
    "e": frozenset({"pattern_id"}),
    "b": frozenset({"object_pk", "object_id"}),
}


@functools.cache
def learn_statement(*, dedup: bool, external_id: bool, evaluated: bool, dims: int | None) -> str:
    """The statement for one combination of what learn needs (cached: identifiers only)."""
    pattern_columns, pattern_values = _select_list(
        Pattern, "p", {"embedding": "%(vector)s::vector"}
    )
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
        f"inserted AS (INSERT INTO memory_pattern ({pattern_columns})"  # noqa: S608
        f" SELECT {pattern_values}"
        " WHERE (SELECT model FROM project) = %(model)s AND (SELECT id FROM known) IS NULL"
        " AND (SELECT id FROM duplicate) IS NULL"
        " ON CONFLICT (project_id, external_id) WHERE external_id IS NOT NULL DO NOTHING"
        " RETURNING id)",
        f"pattern_audit AS ({_audit_insert('inserted', 'a', None)})",
    ]
    if evaluated:
        evaluation_columns, evaluation_values = _select_list(
            Evaluation, "e", {"pattern_id": "inserted.id"}
        )
        parts += [
            f"evaluated AS (INSERT INTO memory_evaluation ({evaluation_columns})"  # noqa: S608
            f" SELECT {evaluation_values} FROM inserted RETURNING id, pattern_id)",
            f"evaluation_audit AS ({_audit_insert('evaluated', 'b', 'pattern_id')})",
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


def audit_entry(instance: Model, content_type: ContentType, when: Any) -> AuditEntry:
    """The CREATE entry auditlog writes for instance (its id added by the statement)."""
    entry = AuditEntry(
        content_type=content_type,
        object_pk="",
        object_repr=str(instance),
        action=BaseLogEntry.Action.CREATE,
        changes=model_instance_diff(None, instance),
        additional_data=instance.get_additional_data(),  # type: ignore[attr-defined]
        timestamp=when,
    )
    fill_audit_context(AuditEntry, entry)
    return entry


def _row_params(pattern: Pattern, evaluation: Evaluation | None, when: Any) -> dict[str, Any]:
    """The bound values of the rows the statement may insert."""
    params = {
        **_values(pattern, "p", _OWN["p"]),
        **_values(audit_entry(pattern, ContentType.objects.get_for_model(Pattern), when), "a"),
    }
    if evaluation is not None:
        for_evaluation = ContentType.objects.get_for_model(Evaluation)
        params.update(_values(evaluation, "e", _OWN["e"]))
        params.update(_values(audit_entry(evaluation, for_evaluation, when), "b"))
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
    "audit_entry",
    "learn_statement",
    "run_learn_statement",
]
