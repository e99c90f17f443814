"""retrieval.search: a statement run with its own hnsw.ef_search, in the same round trip."""

import pytest
from django.db import DatabaseError, connection, transaction

from retrieval.search import (
    HNSW_EF_SEARCH,
    MAX_EF_SEARCH,
    MIN_EF_SEARCH,
    ef_search_for,
    execute_with_ef_search,
)

SHOW = "SELECT current_setting('hnsw.ef_search')"


def _setting() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW hnsw.ef_search")
        return cursor.fetchone()[0]


def test_the_statement_sees_its_ef_search_and_the_connections_own_comes_back(db):
    with connection.cursor() as cursor:
        cursor.execute("SET hnsw.ef_search = 123")
        with CaptureStatements() as sent:
            execute_with_ef_search(cursor, SHOW, {}, 57)
        assert cursor.fetchall() == [("57",)]
    assert len(sent) == 1  # one round trip
    assert _setting() == "123"  # inside a transaction (the test's) as well


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_too_and_after_a_failing_statement():
    with connection.cursor() as cursor:
        cursor.execute("SET hnsw.ef_search = 77")
        execute_with_ef_search(cursor, SHOW, {}, 41)
        assert cursor.fetchall() == [("41",)]
    assert _setting() == "77"
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        execute_with_ef_search(cursor, "SELECT 1 / 0", {}, 41)
    assert _setting() == "77"
    with pytest.raises(DatabaseError), connection.cursor() as cursor:
        execute_with_ef_search(cursor, "SELECT 1 / 0", {}, 41)
    assert _setting() == "77"


def test_ef_search_follows_the_candidate_window_above_a_floor():
    assert MIN_EF_SEARCH < 200 < HNSW_EF_SEARCH + 1
    assert ef_search_for(40) == MIN_EF_SEARCH  # limit 10 (4 candidates a result)
    assert ef_search_for(200) == 200  # limit 50
    assert ef_search_for(1) == MIN_EF_SEARCH
    assert ef_search_for(5000) == MAX_EF_SEARCH == 1000  # pgvector refuses more


class CaptureStatements(list):
    """The statements sent to the database while inside (a raw cursor's too)."""

    def __enter__(self):
        self._wrapper = connection.execute_wrapper(self._record)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc):
        self._wrapper.__exit__(*exc)

    def _record(self, execute, sql, params, many, context):
        self.append(sql)
        return execute(sql, params, many, context)
