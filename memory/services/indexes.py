"""Each large project gets its own HNSW index: a partial index whose rows are exactly its scope.

The shared per-model index (migration 0002) serves every project, so a scoped search through it
filters as it goes, and PostgreSQL often prefers exact search for projects of 5-10% of the table
(7-10 ms at 6-9k rows here). A partial index `WHERE project_id = N AND embedding_model = 'm'
AND NOT archived` holds only the project's live rows: the recall statement's HNSW branch
(`retrieval.search`) matches it without any change, the planner takes it because nothing is
filtered, and a search costs 3-4 ms at recall@10 1.000 (docs/benchmarks.md).

A project that holds most of its model's live rows needs none: the shared index is then as
good as its own (the scope filter passes most of what it reads, and the iterative scan fills the
page), and a second index would hold the same rows, so every learn would insert its vector
twice (about half of learn's insert time, docs/benchmarks.md). So a project gets its own index
only while it holds less than SHARED_INDEX_SHARE (half) of its model's live rows, and keeps it
until it holds more than DROP_ABOVE_SHARE; a single-project deployment never builds one.

Which projects have one is decided from the data, never stored separately:
`sync_project_indexes()` compares live row counts with the indexes in the catalog, creates the
missing ones (`CREATE INDEX CONCURRENTLY`, so writes go on), and drops those of projects that
shrank below half the threshold, grew to most of their model's rows, changed model, or are
gone, and any left invalid by an interrupted build. Learning into a large project queues the
`project_index` job when it needs its index and that is missing; `engramia sync_indexes` runs the
same for every project.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Sum

from memory.models import Pattern, ScopeSize
from retrieval import search
from retrieval.search import INDEXED_EMBEDDING_MODELS
from tenants.models import Project

logger = logging.getLogger(__name__)

INDEX_KIND = "project_index"
PROJECT_INDEX_PREFIX = "pattern_hnsw_p"
_NAME = re.compile(rf"^{PROJECT_INDEX_PREFIX}(\d+)_([0-9a-f]{{8}})$")
# ef_construction 128: on the bench's 17,885-row project (hash vectors) 64 gave recall@10 0.938,
# 128 gave 1.000; building it took 3.9 s. (A project served by the shared index, built with 64,
# measured 0.9995 at 10k rows and 0.9965 at 100k: docs/benchmarks.md.)
PROJECT_INDEX_M = 16
PROJECT_INDEX_EF_CONSTRUCTION = 128
# A project keeps its index until it falls below this share of the threshold, so one hovering
# around the threshold is not rebuilt back and forth.
DROP_BELOW_FRACTION = 0.5
# A project holding at least this share of its model's live rows is served by the model's shared
# index; one that has its own index keeps it up to DROP_ABOVE_SHARE (so one hovering around the
# share is not rebuilt back and forth). Recall@10 through the shared index: docs/benchmarks.md.
SHARED_INDEX_SHARE = 0.5
DROP_ABOVE_SHARE = 0.6
BUILD_MAINTENANCE_WORK_MEM = "256MB"
_LOCK_KEY = 0x656E6772_69647831  # pg advisory lock: one sync at a time, across processes

# Indexes this process has seen valid, and when: learn skips the catalog check for them for a
# while (another process's sync may drop an index; the next check after that notices).
KNOWN_VALID_SECONDS = 600.0
_known_valid: dict[str, float] = {}
# Indexes this process asked a build of, and when: the learns that follow it do not ask again
# (nor look for the job) until the build has had time to finish.
REQUESTED_SECONDS = 30.0
_requested: dict[str, float] = {}


def project_index_name(project_id: int, model: str) -> str:
    """The index of one project's vectors of one model (a model change gets a new one)."""
    digest = hashlib.sha256(model.encode()).hexdigest()[:8]
    return f"{PROJECT_INDEX_PREFIX}{int(project_id)}_{digest}"


@dataclass(frozen=True)
class ProjectIndex:
    """A project index found in the catalog."""

    name: str
    project_id: int
    valid: bool


@dataclass
class SyncReport:
    """What one sync did."""

    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    skipped: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "dropped": self.dropped,
            "kept": self.kept,
            "skipped": self.skipped,
        }


def existing_project_indexes(project_id: int | None = None) -> dict[str, ProjectIndex]:
    """The project indexes on the pattern table, valid or not (a failed concurrent build)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = %s::regclass AND c.relname LIKE %s",
            [Pattern._meta.db_table, PROJECT_INDEX_PREFIX.replace("_", r"\_") + "%"],
        )
        rows = cursor.fetchall()
    found = {}
    for name, valid in rows:
        match = _NAME.match(name)
        if match is None:
            continue
        owner = int(match.group(1))
        if project_id is None or owner == project_id:
            found[name] = ProjectIndex(name=name, project_id=owner, valid=bool(valid))
    return found


def _scope_sizes(project_id: int | None) -> dict[tuple[int, str], int]:
    """Live rows per (project, model) of the indexed models, as the writes keep them."""
    queryset = ScopeSize.objects.filter(
        embedding_model__in=list(INDEXED_EMBEDDING_MODELS), live_rows__gt=0
    )
    if project_id is not None:
        queryset = queryset.filter(project_id=project_id)
    return {
        (owner, model): rows
        for owner, model, rows in queryset.values_list("project_id", "embedding_model", "live_rows")
    }


def _model_rows() -> dict[str, int]:
    """Live rows per indexed model, over every project (the rows its shared index serves)."""
    queryset = ScopeSize.objects.filter(embedding_model__in=list(INDEXED_EMBEDDING_MODELS))
    return dict(queryset.values_list("embedding_model").annotate(rows=Sum("live_rows")).order_by())


def served_by_shared_index(rows: int, model_rows: int, *, has_own: bool = False) -> bool:
    """Whether a project of `rows` live rows of a model needs no index of its own.

    True when it holds most of the model's `model_rows` live rows (at least SHARED_INDEX_SHARE;
    more than DROP_ABOVE_SHARE when it has its own index already).
    """
    share = rows / model_rows if model_rows > 0 else 1.0
    return share > DROP_ABOVE_SHARE if has_own else share >= SHARED_INDEX_SHARE


def scope_size(project_id: int, model: str) -> int:
    """The project's live rows of model (ScopeSize: one row read, never a count)."""
    return _scope_sizes(project_id).get((project_id, model), 0) if model else 0


def _create_statement(name: str, project_id: int, model: str) -> str:
    dimensions = INDEXED_EMBEDDING_MODELS[model]  # a known model: the name is ours, not input
    quoted_model = model.replace("'", "''")
    return (
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {Pattern._meta.db_table} "
        f"USING hnsw ((embedding::vector({int(dimensions)})) vector_cosine_ops) "
        f"WITH (m = {PROJECT_INDEX_M}, ef_construction = {PROJECT_INDEX_EF_CONSTRUCTION}) "
        f"WHERE project_id = {int(project_id)} AND embedding_model = '{quoted_model}' "
        "AND NOT archived"
    )


def sync_project_indexes(
    *, project_id: int | None = None, progress: Callable[[str], None] | None = None
) -> SyncReport:
    """Create the missing project indexes and drop the obsolete ones (one project, or all).

    Runs outside any transaction (concurrent index builds need that). A sync already running
    elsewhere makes this one return at once with `skipped` set.
    """
    if connection.in_atomic_block:
        raise RuntimeError(
            "project indexes are built concurrently: call this outside a transaction"
        )
    report = SyncReport()
    say = progress or (lambda message: None)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_LOCK_KEY])
        if not cursor.fetchone()[0]:
            report.skipped = "another index sync is running"
            return report
        try:
            _sync(cursor, project_id, report, say)
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
    return report


def _sync(
    cursor: Any, project_id: int | None, report: SyncReport, say: Callable[[str], None]
) -> None:
    threshold = search.EXACT_SEARCH_MAX_ROWS
    sizes = _scope_sizes(project_id)
    totals = _model_rows()
    existing = existing_project_indexes(project_id)
    wanted = {
        project_index_name(owner, model): (owner, model, rows)
        for (owner, model), rows in sizes.items()
        if rows > threshold and not served_by_shared_index(rows, totals.get(model, 0))
    }
    keep = set()
    for (owner, model), rows in sizes.items():
        name = project_index_name(owner, model)
        big_enough = rows >= threshold * DROP_BELOW_FRACTION
        if big_enough and not served_by_shared_index(
            rows, totals.get(model, 0), has_own=name in existing
        ):
            keep.add(name)
    for name, index in sorted(existing.items()):
        if index.valid and name in keep:
            report.kept.append(name)
            continue
        why = "left invalid by an interrupted build" if not index.valid else "no longer needed"
        say(f"dropping {name} ({why})")
        cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        _known_valid.pop(name, None)
        report.dropped.append(name)
    cursor.execute(f"SET maintenance_work_mem = '{BUILD_MAINTENANCE_WORK_MEM}'")
    try:
        for name, (owner, model, rows) in sorted(wanted.items()):
            if name in report.kept:
                continue
            say(f"building {name}: project {owner}, {rows} rows of {model}")
            cursor.execute(_create_statement(name, owner, model))
            _known_valid[name] = time.monotonic()
            report.created.append(name)
    finally:
        cursor.execute("RESET maintenance_work_mem")


def project_index_ready(project_id: int, model: str) -> bool:
    """Whether the project's own index for model exists and is valid."""
    name = project_index_name(project_id, model)
    seen = _known_valid.get(name)
    if seen is not None and time.monotonic() - seen < KNOWN_VALID_SECONDS:
        return True
    index = existing_project_indexes(project_id).get(name)
    if index is not None and index.valid:
        _known_valid[name] = time.monotonic()
        return True
    return False


def request_project_index(project: Project, model: str, *, size: int | None = None) -> Any:
    """Queue the project's index build if it is large, has none, needs one and none is on its way.

    Returns the job, or None when there is nothing to do. `size` is the scope's live rows when
    the caller knows them. Cheap when the index exists (this process remembers it) or was
    asked for a moment ago.
    """
    from jobs.models import Job
    from jobs.services import submit_job

    if model not in INDEXED_EMBEDDING_MODELS:
        return None
    rows = scope_size(project.pk, model) if size is None else size
    if rows <= search.EXACT_SEARCH_MAX_ROWS:
        return None
    key = project_index_name(project.pk, model)
    asked = _requested.get(key)
    if asked is not None and time.monotonic() - asked < REQUESTED_SECONDS:
        return None
    if project_index_ready(project.pk, model):
        return None
    _requested[key] = time.monotonic()
    if served_by_shared_index(rows, _model_rows().get(model, 0)):
        return None
    if Job.objects.active().filter(project=project, kind=INDEX_KIND).exists():
        return None
    logger.info("queueing the own HNSW index of project %s (%s)", project.pk, model)
    # Index upkeep is the system's own work, whoever's write made the project large.
    return submit_job(project=project, kind=INDEX_KIND, params={}, actor=None)


def request_index_sync_after_model_change(project: Project, model: str) -> Any:
    """After a project moved to model: queue its index job if it needs a new index or still
    has one of another model to drop. Returns the job, or None when there is nothing to do."""
    from jobs.services import submit_job

    job = request_project_index(project, model)
    current = project_index_name(project.pk, model)
    if job is None and any(name != current for name in existing_project_indexes(project.pk)):
        job = submit_job(project=project, kind=INDEX_KIND, params={}, actor=None)
    return job


__all__ = [
    "INDEX_KIND",
    "ProjectIndex",
    "SyncReport",
    "existing_project_indexes",
    "project_index_name",
    "project_index_ready",
    "request_index_sync_after_model_change",
    "request_project_index",
    "scope_size",
    "served_by_shared_index",
    "sync_project_indexes",
]
