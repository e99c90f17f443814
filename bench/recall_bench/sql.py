"""The bench's side of the database: plain statements, the HNSW indexes, recall.py's own
candidate statements, replaying and explaining what the service issued, exact truth and
recall@k."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .report import ms_since

LIMIT = 10


def recall_at(truth: list[tuple[int, float]], found: Sequence[int], k: int = LIMIT) -> float:
    """Share of the true top-k found, counting rows tied with the k-th distance as true."""
    if not truth:
        return 1.0
    k = min(k, len(truth))
    # Ranking clamps similarity at 0, so every row at distance >= 1 ties with the others.
    cutoff = min(1.0, truth[k - 1][1]) + 1e-6
    correct = {pk for pk, distance in truth if min(1.0, distance) <= cutoff}
    return min(k, len(correct.intersection(found[:k]))) / k


class Database:
    """Django's connection to the bench database, for the embedder's model.

    Construct only after Django is configured (it imports app code).
    """

    def __init__(self, home: Path, model: str, dimensions: int) -> None:
        from django.db import connection

        from memory.services import recall as recall_module
        from retrieval import search as search_module

        self.connection = connection
        self.recall = recall_module
        self.search = search_module
        self.home = home
        self.model = model
        self.dimensions = dimensions

    # -- plumbing --

    def sql(self, statement: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows (empty when it returns none)."""
        with self.connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def setting(self, name: str) -> str:
        """A server setting (SHOW)."""
        return str(self.sql(f"SHOW {name}")[0][0])

    def hnsw_indexes(self) -> dict[str, str]:
        """Name → definition of the HNSW indexes on memory_pattern."""
        rows = self.sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'memory_pattern' "
            "AND indexdef ILIKE '%USING hnsw%' ORDER BY indexname"
        )
        return dict(rows)  # type: ignore[arg-type]

    @property
    def index_file(self) -> Path:
        """Where the definitions of indexes dropped for loading wait to be rebuilt."""
        return self.home / "dropped_hnsw_indexes.json"

    def restore_indexes(self) -> None:
        """Recreate indexes a previous run dropped for loading and did not get to rebuild."""
        if not self.index_file.exists():
            return
        present = self.hnsw_indexes()
        for name, definition in json.loads(self.index_file.read_text()).items():
            if name not in present:
                print(f"restoring index {name} dropped by an interrupted run")
                self.sql(definition)
        self.index_file.unlink()

    # -- recall.py's statements --

    def candidates_sql(self, project: Any, vector: list[float], *, hnsw: bool) -> tuple[str, Any]:
        """recall.py's own statement: its exact search alone, or its HNSW branch.

        The exact statement is the one recall.py uses for a model without an index (no size
        probe); threshold -1 sends any scope to the HNSW branch (its probe reads no row).
        """
        window = max(self.recall.MIN_CANDIDATES, LIMIT * self.recall.CANDIDATE_FACTOR)
        sql = self.recall.search_statement(self.dimensions if hnsw else None, False)
        return sql, self.recall.search_params(project.pk, self.model, vector, window, threshold=-1)

    def run_candidates(
        self,
        project: Any,
        vector: list[float],
        *,
        hnsw: bool,
        ef_search: int | None = None,
        force: bool = False,
        explain: bool = False,
    ) -> tuple[float, list[int], str]:
        """Time one candidate query (ms); return the ids nearest first and the plan's path.

        hnsw=True issues the service's HNSW-path SQL, where the planner may still pick the
        project index; force=True forbids the sort so only the HNSW index can give the order.
        """
        from django.db import transaction

        sql, params = self.candidates_sql(project, vector, hnsw=hnsw)
        path = ""
        with transaction.atomic(), self.connection.cursor() as cursor:
            if hnsw:
                window = max(self.recall.MIN_CANDIDATES, LIMIT * self.recall.CANDIDATE_FACTOR)
                ef = ef_search or self.search.HNSW_EF_SEARCH
                cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                cursor.execute(f"SET LOCAL hnsw.ef_search = {max(ef, window)}")
                if force:
                    cursor.execute("SET LOCAL enable_sort = off")
            if explain:
                cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
                plan = json.dumps(cursor.fetchone()[0])
                path = "hnsw" if "pattern_hnsw_" in plan else "exact"
            started = time.perf_counter()
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            elapsed = ms_since(started)
        distance_at = len(rows[0]) - 2 if rows else 0  # (..., distance, strategy)
        # relaxed_order may return a page slightly out of order; the service re-sorts too.
        ordered = sorted(rows, key=lambda row: row[distance_at])
        return elapsed, [row[0] for row in ordered], path

    def exact_truth(
        self, project: Any, vector: list[float]
    ) -> tuple[float, list[tuple[int, float]]]:
        """Exact nearest rows (id, distance) of the project, and the time it took (ms)."""
        literal = "[" + ",".join(repr(x) for x in vector) + "]"
        started = time.perf_counter()
        rows = self.sql(
            "SELECT id, embedding <=> %s::vector AS distance FROM memory_pattern "
            "WHERE project_id = %s AND archived = false AND embedding_model = %s "
            "ORDER BY distance LIMIT 50",
            [literal, project.pk, self.model],
        )
        return ms_since(started), [(row[0], float(row[1])) for row in rows]

    # -- what the service issued --

    def replay(self, statements: list[tuple[str, Any]]) -> tuple[float, float]:
        """Run the service's statements again as raw SQL: (final SELECT ms, all statements ms)."""
        from django.db import transaction

        split = next(
            (i for i, (sql, _) in enumerate(statements) if sql.startswith("SET LOCAL")),
            len(statements),
        )
        started = time.perf_counter()
        select_ms = 0.0
        with self.connection.cursor() as cursor:
            for sql, params in statements[:split]:
                begin = time.perf_counter()
                cursor.execute(sql, params)
                cursor.fetchall()
                select_ms = ms_since(begin)
        if split < len(statements):
            with transaction.atomic(), self.connection.cursor() as cursor:
                for sql, params in statements[split:]:
                    begin = time.perf_counter()
                    cursor.execute(sql, params)
                    if cursor.description:
                        cursor.fetchall()
                    select_ms = ms_since(begin)
        return select_ms, ms_since(started)

    def explain(self, statements: list[tuple[str, Any]]) -> dict[str, Any]:
        """EXPLAIN ANALYZE of the service's final SELECT under the same SET LOCALs."""
        from django.db import transaction

        *settings_statements, (select, params) = statements
        with transaction.atomic(), self.connection.cursor() as cursor:
            for sql, statement_params in settings_statements:
                if sql.startswith("SET LOCAL"):
                    cursor.execute(sql, statement_params)
            parts = select.split(";\n")
            if len(parts) == 3 and parts[0].startswith("SELECT set_config("):
                # retrieval.search.with_ef_search: its settings first, then the statement alone
                cursor.execute(parts[0])
                select = parts[1]
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {select}", params)
            document = cursor.fetchone()[0]
        plan = document[0] if isinstance(document, list) else json.loads(document)[0]
        indexes: list[str] = []

        def walk(node: dict[str, Any]) -> None:
            if "Index Name" in node:
                indexes.append(f"{node['Node Type']} {node['Index Name']}")
            for child in node.get("Plans", []):
                walk(child)

        walk(plan["Plan"])
        return {
            "execution_ms": plan["Execution Time"],
            "planning_ms": plan["Planning Time"],
            "indexes": indexes or [plan["Plan"]["Node Type"]],
            "jit": "JIT" in plan,
        }
