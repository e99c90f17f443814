"""The web workers' connection pool: a connection given back moments ago is lent unchecked.

psycopg's pool checks a connection with a round trip each time it lends one. A web worker lends
one for every request, so each API call paid that round trip (with the thread hand-offs around
it: ~8% of a `POST /v1/recall`'s time in a profile). A connection that was given back in a
working state less than `RECHECK_AFTER_SECONDS` ago is lent without the check; one idle longer
is checked as before. A connection given back is the next one lent (`_lend_next`), so a
quiet worker keeps reusing the same one.

Trade-off: if the server drops a connection within that second (a restart), the one request
that borrows it fails with a database error instead of getting a fresh connection; the pool
discards the broken connection when the request gives it back. SDK local mode makes the same
trade (`engramia.local.RECHECK_CONNECTIONS_AFTER_SECONDS`).
"""

from __future__ import annotations

import time
from typing import Any

from psycopg_pool import ConnectionPool

__all__ = ["RECHECK_AFTER_SECONDS", "check_unless_recent", "use_recent_check"]

RECHECK_AFTER_SECONDS = 1.0

# Set on each connection the pool takes back (psycopg's pool keeps its own marks the same way).
_RETURNED_AT = "_engramia_returned_at"


def check_unless_recent(connection: Any) -> None:
    """The pool's `check` callback: the usual check, unless the connection just came back."""
    returned = getattr(connection, _RETURNED_AT, None)
    if returned is not None and time.monotonic() - returned < RECHECK_AFTER_SECONDS:
        return
    ConnectionPool.check_connection(connection)


def use_recent_check(sender: Any, connection: Any, **kwargs: Any) -> None:
    """`connection_created`: give the pool Django made (with psycopg's check) this check.

    Django passes the pool its own `check` argument, so it cannot come from the pool options;
    the pool keeps it as `_check` (psycopg_pool 3.3; tests/tenants/test_db_pool.py fails if
    that changes). The time a connection comes back is noted by wrapping the pool's `putconn`:
    a `reset` callback would do it too, but psycopg's pool then hands every return to its
    worker threads instead of taking the connection back in the caller's thread.
    """
    pool = getattr(connection, "pool", None)
    if pool is None or getattr(pool, "_check", None) is not ConnectionPool.check_connection:
        return
    pool._check = check_unless_recent
    give_back = pool.putconn

    def putconn(returned: Any) -> None:
        setattr(returned, _RETURNED_AT, time.monotonic())
        give_back(returned)
        _lend_next(pool, returned)

    pool.putconn = putconn


def _lend_next(pool: Any, returned: Any) -> None:
    """Put a connection just given back at the head of the pool's queue: lent next.

    psycopg's pool lends the connection given back longest ago. A web worker borrows several
    times a run (the request, each of a stream's steps), so with a few connections in its pool
    every loan found one idle for over RECHECK_AFTER_SECONDS and paid the check's round trip,
    and a cold server process behind it. Lent most recent first, the loans of a quiet worker
    keep to one connection, given back moments ago; the others stay idle until the load needs
    them, and are checked when lent. The pool still shrinks by one connection for each
    max_idle (5 minutes) that some go unused, taking the one at the head: a quiet worker
    reconnects (and prepares its statements again) at most that often. A connection
    handed straight to a waiting borrower, or closed, is not in the queue and is left alone
    (psycopg_pool 3.3 keeps the queue as `_pool` under `_lock`; tests/tenants/test_db_pool.py
    fails if that changes).
    """
    with pool._lock:
        idle = pool._pool
        if idle and idle[-1] is returned:
            idle.pop()
            idle.appendleft(returned)
