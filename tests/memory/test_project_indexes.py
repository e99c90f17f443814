"""Large projects get their own HNSW index; recall uses it; sync keeps the set right."""

import json

import pytest
from django.core.management import call_command
from django.db import connection

from jobs.models import Job
from jobs.services import run_job_inline
from memory.models import Pattern
from memory.services import indexes as indexes_module
from memory.services import learn_pattern, recall_patterns
from memory.services import recall as recall_module
from memory.services.indexes import (
    INDEX_KIND,
    existing_project_indexes,
    project_index_name,
    sync_project_indexes,
)
from memory.services.reembedding import start_reembedding
from retrieval import search as search_module
from retrieval.pinned_model import embedder_for
from tenants.services import ensure_project
from tests.memory.patterns import fill

# Concurrent index builds cannot run inside the test's transaction.
pytestmark = pytest.mark.django_db(transaction=True)

THRESHOLD = 30


@pytest.fixture(autouse=True)
def small_threshold(monkeypatch):
    monkeypatch.setattr(search_module, "EXACT_SEARCH_MAX_ROWS", THRESHOLD)
    yield
    with connection.cursor() as cursor:  # DDL outlives the test's table flush
        for name in existing_project_indexes():
            cursor.execute(f"DROP INDEX IF EXISTS {name}")


def _hnsw_scan(project, task):
    """The recall plan's scan of the pattern table in its HNSW branch, planned without a sort (a
    few hundred rows are as cheap to sort as to walk an HNSW graph, so which one the planner
    takes then depends on the table's statistics of the moment)."""
    embedder = embedder_for(project)
    statement = recall_module.search_statement(384, False)
    params = recall_module.search_params(project.pk, embedder.name, embedder.embed_query(task), 40)
    with connection.cursor() as cursor:
        cursor.execute("SET enable_sort = off")
        try:
            cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF) {statement}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("RESET enable_sort")
    hnsw_branch = plan.split(f"col1 > {THRESHOLD})")[1]
    return next(line for line in hnsw_branch.splitlines() if " on memory_pattern" in line)


def _hnsw_recall_matches_exact(monkeypatch, project, task):
    """Recall goes through HNSW and returns what exact search returns."""
    result = recall_patterns(project=project, task=task, limit=10)
    assert result.strategy == "hnsw"
    monkeypatch.setattr(search_module, "EXACT_SEARCH_MAX_ROWS", 10_000)
    exact = recall_patterns(project=project, task=task, limit=10)
    assert exact.strategy == "exact"
    assert [m.pattern_id for m in result.matches] == [m.pattern_id for m in exact.matches]
    monkeypatch.setattr(search_module, "EXACT_SEARCH_MAX_ROWS", THRESHOLD)


def test_sync_builds_indexes_for_large_projects_only_and_recall_uses_them(
    monkeypatch, every_large_project
):
    big = ensure_project("bigco", "main", actor=None)
    other = ensure_project("otherco", "main", actor=None)
    small = ensure_project("smallco", "main", actor=None)
    fill(big, 200, 1)
    fill(other, 80, 2)
    fill(small, 10, 3)
    big_index = project_index_name(big.pk, big.embedding_model)

    report = sync_project_indexes()
    assert sorted(report.created) == sorted(
        [big_index, project_index_name(other.pk, other.embedding_model)]
    )
    found = existing_project_indexes()
    assert set(found) == set(report.created) and all(index.valid for index in found.values())

    query = "parse json deploy queue"
    scan = _hnsw_scan(big, query)
    assert f"Index Scan using {big_index} " in scan and "never executed" not in scan
    _hnsw_recall_matches_exact(monkeypatch, big, query)

    again = sync_project_indexes()
    assert again.created == [] and again.dropped == [] and len(again.kept) == 2


def test_sync_drops_indexes_of_shrunk_or_deleted_projects_with_hysteresis(every_large_project):
    big = ensure_project("bigco", "main", actor=None)
    gone = ensure_project("goneco", "main", actor=None)
    fill(big, 60, 1)
    fill(gone, 60, 2)
    assert len(sync_project_indexes().created) == 2
    big_index = project_index_name(big.pk, big.embedding_model)
    gone_index = project_index_name(gone.pk, gone.embedding_model)

    # Below the threshold but above half of it: kept, so a hovering project is not rebuilt.
    live = list(Pattern.objects.filter(project=big).values_list("pk", flat=True))
    Pattern.objects.filter(pk__in=live[:40]).update(archived=True)  # 20 live: 20 >= 15
    gone.delete()
    report = sync_project_indexes()
    assert report.kept == [big_index]
    assert report.dropped == [gone_index]

    Pattern.objects.filter(pk__in=live[:50]).update(archived=True)  # 10 live: < 15
    assert sync_project_indexes().dropped == [big_index]
    assert existing_project_indexes() == {}


def test_an_index_left_invalid_by_an_interrupted_build_is_rebuilt(every_large_project):
    big = ensure_project("bigco", "main", actor=None)
    fill(big, 60, 1)
    name = sync_project_indexes().created[0]
    with connection.cursor() as cursor:  # what a cancelled CREATE INDEX CONCURRENTLY leaves
        cursor.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [name]
        )
    assert existing_project_indexes()[name].valid is False
    report = sync_project_indexes()
    assert report.dropped == [name] and report.created == [name]
    assert existing_project_indexes()[name].valid is True


def test_learning_into_a_large_project_queues_its_index_once(every_large_project):
    big = ensure_project("bigco", "main", actor=None)
    fill(big, 40, 1)
    learn_pattern(project=big, task="deploy the queue workers with a canary", code="c", actor=None)
    jobs = Job.objects.filter(project=big, kind=INDEX_KIND)
    assert jobs.count() == 1
    learn_pattern(project=big, task="render json for the dashboard", code="c", actor=None)
    assert jobs.count() == 1  # one is already on its way
    finished = run_job_inline(jobs.get())
    assert finished.status == "succeeded", finished.error
    assert finished.result["created"] == [project_index_name(big.pk, big.embedding_model)]
    learn_pattern(project=big, task="parse csv exports nightly", code="c", actor=None)
    assert jobs.count() == 1  # the index exists now

    small = ensure_project("smallco", "main", actor=None)
    learn_pattern(
        project=small, task="deploy the queue workers with a canary", code="c", actor=None
    )
    assert not Job.objects.filter(project=small, kind=INDEX_KIND).exists()


def test_sync_indexes_command(capsys, every_large_project):
    big = ensure_project("bigco", "main", actor=None)
    fill(big, 60, 1)
    call_command("sync_indexes", "--project", "bigco/main", "--json")
    captured = capsys.readouterr()
    assert json.loads(captured.out)["created"] == [project_index_name(big.pk, "hash:384")]
    assert "building" in captured.err
    call_command("sync_indexes")
    assert "built 0, dropped 0, kept 1 project indexes" in capsys.readouterr().out


def test_a_project_holding_most_of_its_models_rows_is_served_by_the_shared_index(monkeypatch):
    big = ensure_project("bigco", "main", actor=None)
    small = ensure_project("smallco", "main", actor=None)
    fill(big, 200, 1)
    fill(small, 10, 2)

    report = sync_project_indexes()
    assert report.created == [] and existing_project_indexes() == {}
    learn_pattern(project=big, task="deploy the queue workers with a canary", code="c", actor=None)
    assert not Job.objects.filter(project=big, kind=INDEX_KIND).exists()

    query = "parse json deploy queue"
    # The model's shared index matches the project's scope and serves its HNSW branch.
    scan = _hnsw_scan(big, query)
    assert "Index Scan using pattern_hnsw_hash_384 " in scan and "never executed" not in scan
    _hnsw_recall_matches_exact(monkeypatch, big, query)


def test_an_own_index_is_dropped_once_its_project_holds_most_rows_with_hysteresis():
    big = ensure_project("bigco", "main", actor=None)
    other = ensure_project("otherco", "main", actor=None)
    third = ensure_project("thirdco", "main", actor=None)
    for seed, project in enumerate((big, other, third)):
        fill(project, 60, seed)
    big_index = project_index_name(big.pk, big.embedding_model)
    other_index = project_index_name(other.pk, other.embedding_model)
    assert len(sync_project_indexes().created) == 3  # a third of the rows each

    third.delete()  # half each: above the share that builds one, below the one that drops it
    report = sync_project_indexes()
    assert sorted(report.kept) == sorted([big_index, other_index])

    fill(big, 40, 9)  # 100 of 160 rows: more than DROP_ABOVE_SHARE
    report = sync_project_indexes()
    assert report.dropped == [big_index] and report.kept == [other_index]
    assert set(existing_project_indexes()) == {other_index}


def test_moving_to_another_model_queues_the_sync_that_drops_the_old_index(monkeypatch):
    big = ensure_project("bigco", "main", actor=None)
    fill(big, 60, 1)
    monkeypatch.setattr(indexes_module, "SHARED_INDEX_SHARE", 1.1)
    monkeypatch.setattr(indexes_module, "DROP_ABOVE_SHARE", 1.1)
    old_index = project_index_name(big.pk, big.embedding_model)
    assert sync_project_indexes().created == [old_index]
    monkeypatch.undo()
    monkeypatch.setattr(search_module, "EXACT_SEARCH_MAX_ROWS", THRESHOLD)

    # The only project of its new model: it needs no index of its own, but the old one must go.
    job = start_reembedding(
        project=big, embedding_model="local:all-MiniLM-L6-v2", actor=None, enqueue=False
    )
    done = run_job_inline(job)
    assert done.status == "succeeded", done.error
    index_job = Job.objects.get(pk=done.result["index_job"])
    assert run_job_inline(index_job).result["dropped"] == [old_index]
    assert existing_project_indexes() == {}
