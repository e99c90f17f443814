"""Writes in one SQL statement that still leave the audit entries auditlog would have written.

Hot paths (learn, the end of an assistant run) insert several rows at once with data-modifying
CTEs instead of one `save()` each: one round trip instead of one per row, per audit entry and
per auditlog re-read. The rows are built as model instances in Python and their column values
taken with Django's own field conversions, so a column added to a model is written here too;
the audit entries are built with auditlog's own diff and stamped by
`tenants.audit.fill_audit_context` (actor, key name, request id), as a `save()` would have.
The hottest of them are prepared statements (`bound_cursor`).
"""

from __future__ import annotations

import functools
from typing import Any

from auditlog.diff import model_instance_diff
from auditlog.models import LogEntry as BaseLogEntry
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Model
from django.utils import timezone
from psycopg import Cursor
from psycopg import _queries as psycopg_queries

from tenants.audit import fill_audit_context
from tenants.models import AuditEntry

# psycopg caches how it splits a query at its placeholders only up to 4,096 bytes and 50
# parameters, against ORM statements of ever-changing shapes. The statements built here have a
# few fixed shapes but are larger (learn's with an evaluation is 5 KB; a streamed run's insert
# and its answer are over the limits too), so each call split them again: ~0.5 ms of Python
# for 160 placeholders. psycopg's cache keeps 128 shapes of up to 16 KB each.
psycopg_queries.MAX_CACHED_STATEMENT_LENGTH = max(
    psycopg_queries.MAX_CACHED_STATEMENT_LENGTH, 16 * 1024
)
psycopg_queries.MAX_CACHED_STATEMENT_PARAMS = max(psycopg_queries.MAX_CACHED_STATEMENT_PARAMS, 256)

# Columns of an audit entry the statement writes itself (the row's id is known only there).
AUDIT_OWN = frozenset({"object_pk", "object_id"})


def columns(model: type[Model], prefix: str) -> list[tuple[str, str, str]]:
    """(column, parameter name, SQL type) of every concrete column but the id."""
    return [
        (str(field.column), f"{prefix}_{field.column}", field.cast_db_type(connection) or "")
        for field in model._meta.concrete_fields
        if not field.primary_key
    ]


def values(instance: Model, prefix: str, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The instance's column values as an INSERT binds them (auto_now fields filled)."""
    return {
        f"{prefix}_{field.column}": field.get_db_prep_save(
            field.pre_save(instance, True), connection
        )
        for field in instance._meta.concrete_fields
        if not field.primary_key and field.column not in skip
    }


def read_columns(model: type[Model], alias: str) -> str:
    """`alias."col", …` for every concrete column, in the order `from_row` takes them."""
    return ", ".join(f'{alias}."{field.column}"' for field in model._meta.concrete_fields)


@functools.cache
def _readers(model: type[Model]) -> tuple[list[str], list[Any]]:
    fields = model._meta.concrete_fields
    return [field.attname for field in fields], [
        getattr(field, "from_db_value", None) for field in fields
    ]


def from_row(model: type[Model], row: Any) -> Any:
    """An instance of model from the values of `read_columns`, converted as the ORM does (JSON
    columns arrive as text, for instance)."""
    names, converters = _readers(model)
    converted = [
        value if convert is None or value is None else convert(value, None, connection)
        for value, convert in zip(row, converters, strict=True)
    ]
    return model.from_db(connection.alias, names, converted)


def split_row(row: Any, *models: type[Model]) -> list[tuple[Any, ...]]:
    """The values of a row that reads several models' `read_columns` side by side, one tuple
    per model (for `from_row`)."""
    parts, start = [], 0
    for model in models:
        width = len(model._meta.concrete_fields)
        parts.append(tuple(row[start : start + width]))
        start += width
    return parts


def select_list(model: type[Model], prefix: str, overrides: dict[str, str]) -> tuple[str, str]:
    """`(col, …)` and the matching `%(param)s::type, …` with some columns given as SQL."""
    names, bound = [], []
    for column, name, db_type in columns(model, prefix):
        names.append(column)
        bound.append(overrides.get(column, f"%({name})s::{db_type}"))
    return ", ".join(names), ", ".join(bound)


def insert_select(
    model: type[Model], prefix: str, overrides: dict[str, str] | None = None, source: str = ""
) -> str:
    """`INSERT INTO <table> (col, …) SELECT <bound values> [FROM source]` for one row of model
    (per row of source), its values bound under prefix unless overrides gives them as SQL."""
    names, bound = select_list(model, prefix, overrides or {})
    rows = f" FROM {source}" if source else ""
    return f"INSERT INTO {model._meta.db_table} ({names}) SELECT {bound}{rows}"


def jsonb_change(name: str, value: str, before: str = "'None'") -> str:
    """The `{name: [before, value]}` change auditlog writes, for values known only in SQL."""
    return f"jsonb_build_object('{name}', jsonb_build_array({before}, ({value})::text))"


def audit_insert(
    source: str,
    prefix: str,
    *,
    created: bool = True,
    new_fks: tuple[str, ...] = (),
    extra_changes: str = "",
    object_repr: str | None = None,
) -> str:
    """INSERT of one audit entry per row of `source` (a CTE returning `id`, maybe FKs).

    For a created row auditlog leaves out the fields that are None before the insert: the id,
    and the FKs (new_fks) to rows inserted alongside. The statement adds them as auditlog would
    have written them. extra_changes is more jsonb to merge in; object_repr an SQL expression.
    """
    changes = f"%({prefix}_changes)s::jsonb"
    if created:
        changes += f" || {jsonb_change('id', f'{source}.id')}"
    for fk_column in new_fks:
        changes += f" || {jsonb_change(fk_column.removesuffix('_id'), f'{source}.{fk_column}')}"
    changes += extra_changes
    overrides = {
        "object_pk": f"{source}.id::text",
        "object_id": f"{source}.id",
        "changes": changes,
    }
    if object_repr is not None:
        overrides["object_repr"] = object_repr
    return insert_select(AuditEntry, prefix, overrides, source)


def audit_entry(
    instance: Model, when: Any, *, before: Model | None = None, fields: list[str] | None = None
) -> AuditEntry:
    """The entry auditlog writes for instance: CREATE, or UPDATE of fields from before.

    A created row's id is added by the statement (audit_insert); its values are not bound.
    """
    entry = AuditEntry(
        content_type=ContentType.objects.get_for_model(type(instance)),
        object_pk="",
        object_repr=str(instance),
        action=BaseLogEntry.Action.CREATE if before is None else BaseLogEntry.Action.UPDATE,
        changes=model_instance_diff(before, instance, fields_to_check=fields) or {},
        additional_data=instance.get_additional_data(),  # type: ignore[attr-defined]
        timestamp=when,
    )
    fill_audit_context(AuditEntry, entry)
    return entry


def audit_values(entry: AuditEntry, prefix: str) -> dict[str, Any]:
    """The bound values of an audit entry made by audit_entry."""
    return values(entry, prefix, AUDIT_OWN)


@functools.cache
def _insert_statement(model: type[Model]) -> str:
    return (
        f"WITH inserted AS ({insert_select(model, 'o')} RETURNING id),"  # noqa: S608
        f" audit AS ({audit_insert('inserted', 'a')}) SELECT id FROM inserted"
    )


def bound_cursor() -> Any:
    """A cursor whose statements bind their values on the server, as prepared statements.

    Django binds values client-side, so PostgreSQL parses and plans every statement anew:
    0.7-1.8 ms for the CTE that stores a run's answer (five tables, four audit entries), about
    a third of that for a row and its audit entry. This cursor binds server-side and has
    psycopg prepare each statement on a connection's first use of it; after that PostgreSQL
    only binds and executes it. For single statements that run often, with every value bound.
    Errors, the query log (which shows the statement's `$n` placeholders, not its values) and
    execute_wrapper hooks are Django's, as with connection.cursor().

    Only these cursors prepare: the connection's `prepare_threshold` stays None (Django's
    default), so psycopg keeps no account of Django's own queries. A rollback of the whole
    transaction makes psycopg deallocate the connection's prepared statements (they are
    prepared again on their next use). ENGRAMIA_DB_PREPARED_STATEMENTS=0 binds server-side
    without preparing (PgBouncer in transaction mode before 1.22, or without
    `max_prepared_statements`).
    """
    cursor = connection.cursor()  # connected, checked for its thread, wrapped by Django
    cursor.cursor.close()
    cursor.cursor = _PreparedCursor(connection.connection)
    return cursor


class _PreparedCursor(Cursor[Any]):
    """A server-binding cursor whose statements are prepared (unless turned off)."""

    def execute(self, query: Any, params: Any = None, **options: Any) -> Any:
        if not settings.DB_PREPARED_STATEMENTS:
            return super().execute(query, params, **options)
        connection = self.connection
        saved = connection.prepare_threshold
        connection.prepare_threshold = 0  # prepared at its first use, then reused
        try:
            return super().execute(query, params, prepare=True, **options)
        finally:
            connection.prepare_threshold = saved

    def _send_query_prepared(self, name: bytes, pgq: Any, *, binary: bool | None = None) -> None:
        # psycopg 3.3 keeps only an unprepared statement's query (`_query`), which Django's
        # query log reads.
        self._query = pgq
        super()._send_query_prepared(name, pgq, binary=binary)


def insert_audited(instance: Model, when: Any = None) -> Model:
    """Insert a new row and the CREATE entry auditlog writes for it, in one round trip.

    save() takes two, plus auditlog's signal. No save signal is sent: use it only for models
    whose saves have no receivers but auditlog's.
    """
    params = {
        **values(instance, "o"),
        **audit_values(audit_entry(instance, when or timezone.now()), "a"),
    }
    with bound_cursor() as cursor:
        cursor.execute(_insert_statement(type(instance)), params)
        instance.pk = cursor.fetchone()[0]
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


__all__ = [
    "AUDIT_OWN",
    "audit_entry",
    "audit_insert",
    "audit_values",
    "columns",
    "insert_audited",
    "insert_select",
    "jsonb_change",
    "select_list",
    "values",
]
