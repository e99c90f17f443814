"""learn: validation, dedup branches, external_id idempotency, original timestamps."""

from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from memory.models import Evaluation, Pattern
from memory.services import learn_pattern
from memory.services.learn_statement import DEDUP_EF_SEARCH
from retrieval import search as search_module
from tests.memory.patterns import fill


def learn(client, **fields):
    payload = {"task": "Parse a CSV file into dicts", "code": "import csv", **fields}
    return client.post("/v1/learn", payload, format="json")


def test_learn_stores_a_pattern_with_its_score_as_an_evaluation(editor):
    response = learn(
        editor.client(), eval_score=8, output="ok", run_id="r1", metadata={"lang": "py"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["stored"] is True and body["duplicate_of"] is None and body["pattern_count"] == 1
    pattern = Pattern.objects.get(pk=body["pattern_id"])
    assert pattern.project == editor.project and pattern.embedding_model == "hash:384"
    assert pattern.eval_score == 8 and pattern.metadata == {"lang": "py"}
    assert Evaluation.objects.get(pattern=pattern).evaluator == "api"


def test_original_created_at_is_kept_from_iso_or_epoch(editor):
    iso = learn(editor.client(), task="first task", created_at="2024-03-01T12:00:00Z").json()
    epoch = learn(editor.client(), task="second task", created_at=1700000000).json()
    assert Pattern.objects.get(pk=iso["pattern_id"]).created_at == datetime(
        2024, 3, 1, 12, tzinfo=UTC
    )
    assert Pattern.objects.get(pk=epoch["pattern_id"]).created_at == datetime.fromtimestamp(
        1700000000, UTC
    )


def test_same_external_id_is_stored_once(editor):
    first = learn(editor.client(), external_id="msg_1")
    second = learn(editor.client(), external_id="msg_1", task="something else entirely")
    assert first.status_code == 201 and second.status_code == 200
    assert second.json() == {
        "pattern_id": first.json()["pattern_id"],
        "stored": False,
        "duplicate_of": first.json()["pattern_id"],
    }
    assert Pattern.objects.count() == 1


def test_skip_returns_the_existing_near_duplicate(editor):
    first = learn(editor.client()).json()
    again = learn(editor.client(), task="  parse a CSV file into dicts. ")
    assert again.status_code == 200
    assert again.json()["stored"] is False and again.json()["duplicate_of"] == first["pattern_id"]


def test_keep_both_stores_without_looking_for_a_duplicate(editor):
    first = learn(editor.client()).json()
    both = learn(editor.client(), on_duplicate="keep_both")
    assert both.status_code == 201
    body = both.json()
    assert body["duplicate_of"] is None and body["pattern_id"] != first["pattern_id"]
    assert body["pattern_count"] == 2 and Pattern.objects.count() == 2
    assert isinstance(
        learn_pattern(project=editor.project, task="t", code="c", actor=None).pattern_count, int
    )


def test_replace_with_better_only_replaces_when_the_score_is_higher(editor):
    first = learn(editor.client(), eval_score=6, code="v1").json()
    worse = learn(editor.client(), eval_score=4, code="v2", on_duplicate="replace_with_better")
    assert worse.status_code == 200 and worse.json()["stored"] is False
    assert Pattern.objects.get(pk=first["pattern_id"]).code == "v1"
    better = learn(editor.client(), eval_score=9, code="v3", on_duplicate="replace_with_better")
    assert better.status_code == 200
    assert better.json() == {
        "pattern_id": first["pattern_id"],
        "stored": True,
        "duplicate_of": first["pattern_id"],
        "replaced": True,
    }
    pattern = Pattern.objects.get(pk=first["pattern_id"])
    assert pattern.code == "v3" and pattern.eval_score == 9 and Pattern.objects.count() == 1


def test_duplicates_are_only_detected_within_the_project(editor, outsider):
    learn(editor.client())
    other = learn(outsider.client())
    assert other.status_code == 201 and other.json()["duplicate_of"] is None


@pytest.mark.parametrize(
    "payload, attr",
    [
        ({"code": "x"}, "task"),
        ({"task": "t"}, "code"),
        ({"task": "   ", "code": "x"}, "task"),
        ({"task": "t", "code": "x", "eval_score": 11}, "eval_score"),
        ({"task": "t", "code": "x", "eval_score": "high"}, "eval_score"),
        ({"task": "t", "code": "x", "on_duplicate": "merge"}, "on_duplicate"),
        ({"task": "t", "code": "x", "created_at": "last tuesday"}, "created_at"),
        ({"task": "t", "code": "x", "created_at": 10**20}, "created_at"),
        ({"task": "t", "code": "x", "metadata": [1]}, "metadata"),
        ({"task": "t", "code": "x", "metadata": {"k": "v" * 70000}}, "metadata"),
        ({"task": "t", "code": "x", "source": "Not A Slug!"}, "source"),
        ({"task": "t", "code": "x", "colour": "red"}, "colour"),
    ],
)
def test_bad_learn_input_is_a_400_naming_the_field(editor, payload, attr):
    response = editor.client().post("/v1/learn", payload, format="json")
    assert response.status_code == 400, response.content
    assert attr in {error["attr"] for error in response.json()["errors"]}
    assert Pattern.objects.count() == 0


def test_reader_cannot_learn(reader):
    assert learn(reader.client()).status_code == 403


def test_learn_service_records_import_evaluator(project_a):
    result = learn_pattern(
        project=project_a, task="t", code="c", source="import", eval_score=5.0, actor=None
    )
    assert Evaluation.objects.get(pattern_id=result.pattern_id).evaluator == "import"


def test_a_near_duplicate_is_found_in_a_scope_searched_through_hnsw(project_a, monkeypatch):
    monkeypatch.setattr(search_module, "EXACT_SEARCH_MAX_ROWS", 30)
    fill(project_a, 200)  # above the threshold: the duplicate probe takes the HNSW branch
    first = learn_pattern(
        project=project_a, task="deploy the queue workers behind a canary", code="c", actor=None
    )
    # Another task text (another task hash), the same words: the same hash-embedder vector.
    again = learn_pattern(
        project=project_a, task="behind a canary deploy the queue workers", code="d", actor=None
    )
    assert first.stored and again.stored is False and again.duplicate_of == first.pattern_id
    assert Pattern.objects.filter(project=project_a).count() == 201
    with connection.cursor() as cursor:  # recall's own setting is back for the next search
        cursor.execute("SHOW hnsw.ef_search")
        assert cursor.fetchone()[0] == str(search_module.HNSW_EF_SEARCH)


def test_the_duplicate_probe_uses_its_own_ef_search_in_the_same_round_trip(project_a):
    with connection.cursor() as cursor:
        cursor.execute("SET hnsw.ef_search = 123")
    with CaptureQueriesContext(connection) as calls:
        learn_pattern(project=project_a, task="render the invoice", code="c", actor=None)
    (statement,) = [query["sql"] for query in calls.captured_queries]
    assert f"set_config('hnsw.ef_search', '{DEDUP_EF_SEARCH}', true)" in statement
    with connection.cursor() as cursor:  # the connection's own setting, whatever it was
        cursor.execute("SHOW hnsw.ef_search")
        assert cursor.fetchone()[0] == "123"


def test_learns_statement_is_split_at_its_placeholders_once_per_process(project_a, monkeypatch):
    from psycopg import _queries

    learn_pattern(project=project_a, task="warm it", code="c", eval_score=4.0, actor=None)
    uncached: list[int] = []
    split = _queries._query2pg_client_nocache

    def counted(query: bytes, encoding: str) -> Any:
        uncached.append(len(query))
        return split(query, encoding)

    # Queries psycopg does not cache go straight to this function, the others through its cache.
    monkeypatch.setattr(_queries, "_query2pg_client_nocache", counted)
    for index in range(3):
        learn_pattern(
            project=project_a, task=f"task number {index}", code="c", eval_score=4.0, actor=None
        )
    assert uncached == []
