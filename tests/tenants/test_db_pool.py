"""The web workers' pool lends a connection given back moments ago without a round trip, and
checks (and replaces) one that has been idle for longer."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from engramia_site import db_pool


@pytest.fixture
def pool(db: Any) -> Iterator[ConnectionPool]:
    """A pool of one connection to the test database, made as Django makes it, then adjusted."""
    from django.db import connection

    params = connection.get_connection_params()
    made = ConnectionPool(
        kwargs={**params, "autocommit": True},
        min_size=1,
        max_size=1,
        timeout=10,
        check=ConnectionPool.check_connection,
        reset=db_pool.mark_returned,
        open=True,
    )
    db_pool.use_recent_check(None, SimpleNamespace(pool=made))
    try:
        yield made
    finally:
        made.close()


def _kill(backend_pid: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [backend_pid])


def test_the_pool_django_made_gets_the_narrower_check(pool):
    assert pool._check is db_pool.check_unless_recent
    unchecked = ConnectionPool("", open=False, check=None)
    db_pool.use_recent_check(None, SimpleNamespace(pool=unchecked))
    assert unchecked._check is None  # CONN_HEALTH_CHECKS off stays off
    db_pool.use_recent_check(None, SimpleNamespace(pool=None))  # no pool configured


def test_a_connection_given_back_moments_ago_is_lent_unchecked(pool, monkeypatch):
    monkeypatch.setattr(db_pool, "RECHECK_AFTER_SECONDS", 3600)
    with pool.connection() as connection:
        backend = connection.info.backend_pid
    _kill(backend)
    # The documented trade-off: the next borrower gets the dropped connection and one error.
    with pytest.raises(psycopg.OperationalError), pool.connection() as connection:
        connection.execute("SELECT 1")
    # The pool discarded it on its return; the next loan is a working connection.
    with pool.connection() as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
        assert connection.info.backend_pid != backend


def test_a_connection_idle_longer_is_checked_and_replaced_if_dropped(pool, monkeypatch):
    monkeypatch.setattr(db_pool, "RECHECK_AFTER_SECONDS", 0)
    with pool.connection() as connection:
        backend = connection.info.backend_pid
    _kill(backend)
    with pool.connection() as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
        assert connection.info.backend_pid != backend
