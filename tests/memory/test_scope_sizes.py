"""Scope sizes: the live-row count per (project, model) that recall reads instead of counting.

The database keeps them (migration 0008's triggers); every test compares them with a count of
the rows after the writes it makes.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django.db.models import Count

from jobs.services import run_job_inline
from memory.models import Pattern, ScopeSize
from memory.services import delete_pattern, learn_pattern, update_pattern
from memory.services.learn_bulk import LearnItem, learn_patterns_bulk
from memory.services.reembedding import start_reembedding
from tenants.models import Project
from tenants.services import ensure_project


def counted() -> dict[tuple[int, str], int]:
    """The kept sizes (zero rows left out: a scope that emptied may keep its row at 0)."""
    return {
        (row.project_id, row.embedding_model): row.live_rows
        for row in ScopeSize.objects.exclude(live_rows=0)
    }


def actual() -> dict[tuple[int, str], int]:
    rows = Pattern.objects.live().values("project_id", "embedding_model").annotate(n=Count("id"))
    return {(row["project_id"], row["embedding_model"]): row["n"] for row in rows}


def learn(project, task, **extra):
    return learn_pattern(project=project, task=task, code="c", actor=None, **extra)


def test_learn_archive_unarchive_delete_keep_the_size(project_a, project_b):
    first = learn(project_a, "Parse a CSV file", eval_score=7)
    learn(project_a, "Send an email over SMTP")
    learn(project_b, "Resize an image")
    learn(project_a, "parse a csv file!")  # a duplicate: nothing stored
    assert counted() == actual() == {(project_a.pk, "hash:384"): 2, (project_b.pk, "hash:384"): 1}

    pattern = Pattern.objects.get(pk=first.pattern_id)
    update_pattern(pattern=pattern, changes={"archived": True}, actor=None)
    assert counted() == actual() and counted()[(project_a.pk, "hash:384")] == 1
    update_pattern(pattern=pattern, changes={"code": "edited"}, actor=None)  # still archived
    assert counted() == actual()
    update_pattern(pattern=pattern, changes={"archived": False}, actor=None)
    assert counted() == actual() and counted()[(project_a.pk, "hash:384")] == 2

    delete_pattern(pattern=pattern, actor=None)
    Pattern.objects.filter(project=project_b).delete()
    assert counted() == actual() == {(project_a.pk, "hash:384"): 1}


def test_an_archived_row_deleted_leaves_the_size_alone(project_a):
    kept = learn(project_a, "Parse a CSV file")
    gone = learn(project_a, "Send an email over SMTP")
    Pattern.objects.filter(pk=gone.pattern_id).update(archived=True)
    Pattern.objects.filter(pk=gone.pattern_id).delete()
    assert counted() == actual() == {(project_a.pk, "hash:384"): 1}
    assert kept.stored


def test_bulk_learn_copy_and_row_by_row_keep_the_size(project_a):
    items = [LearnItem(task=f"Imported task {i}", code="c", external_id=f"x-{i}") for i in range(5)]
    learn_patterns_bulk(project=project_a, items=items, actor=None)  # COPY
    plain = [LearnItem(task=f"Plain task {i}", code="c") for i in range(3)]
    learn_patterns_bulk(project=project_a, items=plain, actor=None)  # no external ids: INSERT
    learn_patterns_bulk(project=project_a, items=items, actor=None)  # all known: nothing
    assert counted() == actual() == {(project_a.pk, "hash:384"): 8}


def test_deleting_a_project_and_truncating_empty_the_sizes(project_a, project_b):
    learn(project_a, "Parse a CSV file")
    learn(project_b, "Resize an image")
    Project.objects.filter(pk=project_b.pk).delete()  # cascades to its patterns
    assert counted() == actual() == {(project_a.pk, "hash:384"): 1}
    with connection.cursor() as cursor:
        # The deletes above left deferred FK checks pending, which TRUNCATE refuses to run with.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("TRUNCATE memory_pattern CASCADE")
    assert counted() == actual() == {}
    assert not ScopeSize.objects.exists()


def test_reembedding_moves_the_size_to_the_new_model(project_a):
    for index in range(4):
        learn(project_a, f"Task number {index} about invoices")
    Pattern.objects.filter(project=project_a).order_by("pk").first().delete()
    job = start_reembedding(
        project=project_a, embedding_model="hash:256", enqueue=False, actor=None
    )
    assert run_job_inline(job).status == "succeeded"
    assert counted() == actual() == {(project_a.pk, "hash:256"): 3}


def test_a_write_rolled_back_leaves_the_size_as_it_was(project_a):
    learn(project_a, "Parse a CSV file")
    before = counted()
    with pytest.raises(RuntimeError), connection.cursor() as cursor:
        cursor.execute("SAVEPOINT undo")
        learn(project_a, "Something new")
        cursor.execute("ROLLBACK TO SAVEPOINT undo")
        assert counted() == before
        raise RuntimeError
    assert counted() == actual() == before


@pytest.mark.django_db(transaction=True)
def test_concurrent_learns_into_one_project_count_every_row():
    project = ensure_project("acme", "busy", actor=None)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def writer(worker: int) -> None:
        try:
            start.wait()
            for index in range(10):
                learn(project, f"worker {worker} writes distinct task {index} " + "x" * worker)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert counted() == actual()
    assert sum(counted().values()) == Pattern.objects.count()
