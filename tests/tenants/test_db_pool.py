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


def _django_pool(size: int) -> Iterator[ConnectionPool]:
    """The default database behind a pool of size connections, as Django makes it for a web
    worker."""
    from django.db import connection

    saved = (connection.settings_dict["CONN_MAX_AGE"], dict(connection.settings_dict["OPTIONS"]))
    connection.close()
    connection.settings_dict["CONN_MAX_AGE"] = 0
    connection.settings_dict["OPTIONS"]["pool"] = {
        "min_size": size,
        "max_size": size,
        "timeout": 10,
    }
    try:
        connection.ensure_connection()  # connection_created: the pool gets its check
        made = connection.pool
        connection.close()  # back to the pool
        yield made
    finally:
        connection.close()
        connection.close_pool()
        connection.settings_dict["CONN_MAX_AGE"], connection.settings_dict["OPTIONS"] = saved


@pytest.fixture
def pool(transactional_db: Any) -> Iterator[ConnectionPool]:
    """A pool of one connection."""
    yield from _django_pool(1)


@pytest.fixture
def pool_of_three(transactional_db: Any) -> Iterator[ConnectionPool]:
    yield from _django_pool(3)


def _kill(backend_pid: int) -> None:
    with psycopg.connect(**_params(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [backend_pid])


def _params() -> dict[str, Any]:
    from django.db import connection

    params = connection.get_connection_params()
    return {
        key: params[key] for key in ("dbname", "user", "host", "port", "password") if key in params
    }


def test_the_pool_django_makes_gets_the_narrower_check(pool):
    assert pool._check is db_pool.check_unless_recent
    with pool.connection() as connection:
        pass
    assert getattr(connection, db_pool._RETURNED_AT) > 0  # noted where it was given back
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


def test_the_connection_given_back_last_is_lent_first(pool_of_three):
    pool_of_three.wait()
    lent = [pool_of_three.getconn() for _ in range(3)]
    for connection in lent:  # given back in the order they were lent
        pool_of_three.putconn(connection)
    again = pool_of_three.getconn()
    try:
        assert again is lent[-1]  # psycopg's own order would lend lent[0]: idle the longest
        assert pool_of_three.getconn() is lent[-2]
        pool_of_three.putconn(lent[-2])
    finally:
        pool_of_three.putconn(again)
    assert pool_of_three.getconn() is again  # the one given back just now, whatever came before
    pool_of_three.putconn(again)
