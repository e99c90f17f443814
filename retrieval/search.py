"""Scoped nearest-neighbour search over pgvector: one statement picks exact search or HNSW.

Scope before similarity. A scope of at most EXACT_SEARCH_MAX_ROWS rows is searched exactly
(cheap and always complete); a larger one through its model's partial HNSW index with
pgvector's iterative scan, so a filtered search still fills its page. A search through HNSW
runs with the `hnsw.ef_search` its candidate window needs (`ef_search_for`), set and restored
around its statement in the same round trip (`execute_with_ef_search`). The tables that hold
vectors (patterns, document chunks, skills) keep every model's vectors in one column and record
the model on each row; each indexed model has a partial expression index on
`embedding::vector(N)` (memory migration 0002, skills' models).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Sequence
from typing import Any

from django.db.models import Expression
from django.db.models.functions import Cast
from pgvector.django import CosineDistance, VectorField

from retrieval.vectors import vector_literal

# Models with a partial HNSW index per table (name → dimensions); others are searched exactly.
INDEXED_EMBEDDING_MODELS: dict[str, int] = {
    "hash:384": 384,
    "local:all-MiniLM-L6-v2": 384,
    "openai:text-embedding-3-small": 1536,
}
# Up to this many rows in scope, exact search: always complete. A project's rows lie scattered
# over the table as they were learned (one heap page each), so a scan costs ~3 µs a row here:
# ~6 ms at this size, 13.6 ms at 4,471 rows. Above it the scope is searched through HNSW, its
# own index once the `project_index` job has built it (memory.services.indexes). 2,000
# measured better than 1,000, 3,000 and 5,000 over 150 Zipf projects at 100k rows; lower would
# mean many more partial indexes, and each one on the table costs every learn and recall a
# little (planning, and opening it on insert): 137 more cost ~3.5 ms a learn and ~1.7 ms a
# recall in small projects (docs/benchmarks.md, "Exact search up to 2,000 rows").
EXACT_SEARCH_MAX_ROWS = 2000
# The session's setting (`configure_connection`): enough for the largest candidate window
# (limit 50 x 4 candidates per result) of a search that does not set its own.
HNSW_EF_SEARCH = 200
# The smallest candidate list a search sets for itself (`ef_search_for`). recall@10 of 100k
# hash vectors in one project through the shared index (docs/benchmarks.md): 0.956 at 40 (the
# pgvector default), 0.98 crossed between 60 and 80, 0.986-0.990 at 100, 0.996 at 200; the
# statement runs in ~1.4 ms at 100 against ~3.1 ms at 200.
MIN_EF_SEARCH = 100
# pgvector refuses a larger hnsw.ef_search.
MAX_EF_SEARCH = 1000


def scoped_nearest_statement(
    *,
    table: str,
    columns: str,
    scope: str,
    dimensions: int | None,
    size: str | None = None,
    guard: str | None = None,
    vector: str = "%(vector)s",
) -> str:
    """One statement for both paths: the scope's size picks the branch inside the database.

    `columns`, `scope`, `size` and `guard` are SQL written by the caller (never user input) and
    may use the bound names of `search_params`. `size` is a query of one value, the scope's row
    count (a count the writes keep); without it a probe counts the scope's rows up to the
    threshold. A `WHERE` on that value is a one-time filter, so PostgreSQL runs only one branch.
    `guard`, when given, is a condition both branches also need (e.g. that the scope still
    exists as the caller saw it); when it is false the statement returns no rows. `vector` is
    the query vector's SQL (a bound value, or a column of an outer query). Exact search
    orders by the uncast column, which no index matches; the HNSW branch casts to the dimension
    of the model's partial expression index and relies on the session's `hnsw.iterative_scan`
    (see `configure_connection`) to fill the page despite the scope filter. `dimensions=None`
    (a model without an index) has the exact branch only. Rows end with `distance, strategy`.

    Each branch's gate sits above its LIMIT, so the branch that does not run is never started:
    inside it, the gate would land below the Gather of a parallel exact search, whose workers
    PostgreSQL launches before it evaluates the gate (8-15 ms of a 100k-row recall).
    """
    gate = f" AND {guard}" if guard else ""
    exact = (
        f"SELECT {columns}, embedding <=> {vector}::vector AS distance,"  # noqa: S608
        f" 'exact' AS strategy FROM {table} WHERE {scope}{gate}"
    )
    if dimensions is None:
        return f"{exact} ORDER BY distance LIMIT %(window)s"
    vector_type = f"vector({int(dimensions)})"
    size = size or (
        f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {scope}"  # noqa: S608
        " LIMIT %(probe)s) AS s"
    )
    return f"""
        WITH scope_size AS ({size})
        (SELECT * FROM ({exact} ORDER BY distance LIMIT %(window)s) AS exact_branch
          WHERE (SELECT * FROM scope_size) <= %(threshold)s)
        UNION ALL
        (SELECT * FROM (SELECT {columns},
                               (embedding::{vector_type}) <=> ({vector}::{vector_type}) AS distance,
                               'hnsw' AS strategy
                          FROM {table} WHERE {scope}{gate}
                         ORDER BY distance LIMIT %(window)s) AS hnsw_branch
          WHERE (SELECT * FROM scope_size) > %(threshold)s)
    """  # noqa: S608  (identifiers from model metadata and an int; every value is bound)


def ef_search_for(window: int) -> int:
    """The HNSW candidate list a search for `window` rows sets: the window, at least MIN_EF_SEARCH.

    With the iterative scan a filter that leaves fewer rows than the window does not shorten
    the page: pgvector goes on scanning past the first `ef_search` candidates.
    """
    return min(MAX_EF_SEARCH, max(MIN_EF_SEARCH, int(window)))


# The session's value is kept in a placeholder setting of our own while the statement runs.
_SAVED_EF_SEARCH = "engramia.saved_ef_search"


@functools.lru_cache(maxsize=128)
def with_ef_search(statement: str, ef_search: int) -> str:
    """The statement between saving and setting `hnsw.ef_search`, then restoring it (one string).

    Transaction-local settings: in autocommit the query string is one implicit transaction, so
    nothing outlives it; inside a transaction the third statement puts the saved value back,
    and a failing statement rolls the setting back with the transaction.
    """
    return (
        f"SELECT set_config('{_SAVED_EF_SEARCH}',"
        " coalesce(current_setting('hnsw.ef_search', true), '40'), true),"
        f" set_config('hnsw.ef_search', '{int(ef_search)}', true);\n"
        f"{statement};\n"
        f"SELECT set_config('hnsw.ef_search', current_setting('{_SAVED_EF_SEARCH}'), true)"
    )


def execute_with_ef_search(cursor: Any, statement: str, params: Any, ef_search: int) -> None:
    """Execute statement with `hnsw.ef_search = ef_search`, the connection's own value back after.

    One round trip: the settings travel in the same query string, which needs client-side
    parameter binding (Django's default for psycopg). The cursor is left on the statement's rows.
    """
    cursor.execute(with_ef_search(statement, ef_search), params)
    cursor.nextset()  # the first result is the settings'


@functools.cache
def indexed_dimensions(model: str) -> int | None:
    """The dimension of model's HNSW indexes, None when it has none (exact search only)."""
    return INDEXED_EMBEDDING_MODELS.get(model)


def search_params(
    *,
    model: str,
    vector: Sequence[float],
    window: int,
    threshold: int | None = None,
    **scope: Any,
) -> dict[str, Any]:
    """The values `scoped_nearest_statement` binds, plus the caller's scope values."""
    threshold = EXACT_SEARCH_MAX_ROWS if threshold is None else threshold
    return {
        **scope,
        "model": model,
        "vector": vector_literal(vector),
        "window": window,
        "threshold": threshold,
        "probe": threshold + 1,
    }


def cosine_distance(vector: Sequence[float], dimensions: int | None) -> Expression:
    """The ORM expression of a row's cosine distance to vector (index-friendly when indexed).

    Casting to the model's fixed dimension lets PostgreSQL use that model's partial HNSW index.
    """
    if dimensions is None:
        return CosineDistance("embedding", list(vector))
    return CosineDistance(Cast("embedding", VectorField(dimensions=dimensions)), list(vector))


def configure_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
    """Session settings for HNSW scans, once per database connection (`connection_created`).

    Iterative scans keep a scoped (filtered) HNSW search going until the page is full, and
    `ef_search` covers the largest candidate window (limit 50 x 4 candidates per result) for
    searches that do not set their own (recall and learn's duplicate probe do).
    """
    if connection.vendor != "postgresql":
        return
    raw = connection.connection
    if raw in _configured:  # a pooled connection lent again keeps its session settings
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"SET hnsw.iterative_scan = relaxed_order; SET hnsw.ef_search = {int(HNSW_EF_SEARCH)}"
        )
    _configured.add(raw)


# The driver connections already configured (a pool lends the same ones again and again).
_configured: weakref.WeakSet[Any] = weakref.WeakSet()


__all__ = [
    "EXACT_SEARCH_MAX_ROWS",
    "HNSW_EF_SEARCH",
    "INDEXED_EMBEDDING_MODELS",
    "MAX_EF_SEARCH",
    "MIN_EF_SEARCH",
    "configure_connection",
    "cosine_distance",
    "ef_search_for",
    "execute_with_ef_search",
    "indexed_dimensions",
    "scoped_nearest_statement",
    "search_params",
    "with_ef_search",
]
