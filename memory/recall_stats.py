"""Recall counting for the dashboard: counted in memory on the recall path, written in batches.

Recall is read-only (it may run on a replica) and must not slow down, so `count_recall` only
adds one to a per-process counter keyed by project and day, under a lock. A daemon thread writes
the counters to RecallStat every ENGRAMIA_RECALL_STATS_FLUSH_SECONDS with one upsert on its own
database connection, never inside a recall; the dashboard flushes first, so its own process's
recalls show at once, and the others' within one interval. Counts of a project deleted before
the flush are dropped. A process that dies loses at most one interval of counts.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import Counter
from datetime import date

from django.conf import settings
from django.db import DatabaseError, connections
from django.utils import timezone

from memory.models import RecallStat

logger = logging.getLogger("memory.recall_stats")

_lock = threading.Lock()
_pending: Counter[tuple[int, date]] = Counter()
_flusher: threading.Thread | None = None
_flusher_pid = 0
_wake = threading.Event()
_stop = threading.Event()


def count_recall(project_id: int) -> None:
    """Count one recall of the project today (in memory; written by the flusher)."""
    key = (project_id, timezone.now().date())
    with _lock:
        _pending[key] += 1
        if _flusher_pid != os.getpid():
            _start_flusher()


def _start_flusher() -> None:
    """Start this process's flushing thread (again after a fork); called under the lock."""
    global _flusher, _flusher_pid
    _flusher_pid = os.getpid()
    seconds = settings.ENGRAMIA_RECALL_STATS_FLUSH_SECONDS
    if seconds <= 0:  # the test suite flushes explicitly
        return
    _stop.clear()
    _flusher = threading.Thread(
        target=_flush_forever, args=(seconds,), name="engramia-recall-stats", daemon=True
    )
    _flusher.start()
    atexit.register(stop_flusher)


def _flush_forever(seconds: float) -> None:
    while not _stop.is_set():
        _wake.wait(seconds)
        _wake.clear()
        flush_recall_counts()
        connections.close_all()  # this thread's connections only: idle between flushes


def stop_flusher() -> None:
    """Stop this process's flushing thread after a last flush (at exit, and in tests)."""
    global _flusher, _flusher_pid
    thread = _flusher
    _stop.set()
    _wake.set()
    if thread is not None and thread.is_alive():
        thread.join(timeout=10)
    with _lock:
        _flusher, _flusher_pid = None, 0
    atexit.unregister(stop_flusher)  # registered again by the next thread started
    flush_recall_counts()


def pending_recall_counts() -> dict[tuple[int, date], int]:
    """The counts not yet written (for tests and the benchmark)."""
    with _lock:
        return dict(_pending)


# The table name is the model's own, not input.
UPSERT = f"""
INSERT INTO {RecallStat._meta.db_table} (project_id, day, count)
SELECT counted.project_id, counted.day, counted.n
FROM unnest(%s::bigint[], %s::date[], %s::bigint[]) AS counted(project_id, day, n)
JOIN tenants_project project ON project.id = counted.project_id
ON CONFLICT (project_id, day)
DO UPDATE SET count = {RecallStat._meta.db_table}.count + EXCLUDED.count
"""  # noqa: S608


def flush_recall_counts() -> int:
    """Write the pending counts in one statement; returns how many recalls it wrote."""
    with _lock:
        batch = dict(_pending)
        _pending.clear()
    if not batch:
        return 0
    keys = list(batch)
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute(
                UPSERT,
                [[p for p, _ in keys], [d for _, d in keys], [batch[key] for key in keys]],
            )
    except DatabaseError:
        logger.exception(
            "could not write %d recall counts; keeping them for the next flush", len(keys)
        )
        with _lock:
            _pending.update(batch)
        return 0
    return sum(batch.values())
