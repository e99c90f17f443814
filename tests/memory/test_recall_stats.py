"""Recall counts: counted in memory on the recall path, written by a flush, never by recall."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from memory import recall_stats
from memory.models import RecallStat
from memory.recall_stats import count_recall, flush_recall_counts, pending_recall_counts


@pytest.fixture(autouse=True)
def no_counts_left_over():
    flush_recall_counts_quietly()
    yield
    flush_recall_counts_quietly()


def flush_recall_counts_quietly():
    with recall_stats._lock:
        recall_stats._pending.clear()


def _recall(persona, task="parse csv"):
    return persona.client().post("/v1/recall", {"task": task}, format="json")


def _stored(project):
    return RecallStat.objects.filter(project=project).values_list("day", "count")


def test_recalls_are_counted_in_memory_without_a_write(reader):
    with CaptureQueriesContext(connection) as queries:
        assert _recall(reader).status_code == 200
    writes = [
        q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE"))
    ]
    assert writes == [] or all("recallstat" not in sql for sql in writes)
    assert not _stored(reader.project).exists()
    today = timezone.now().date()
    assert pending_recall_counts() == {(reader.project.pk, today): 1}


def test_a_flush_writes_the_counts_and_adds_to_the_days_row(reader):
    for _ in range(3):
        _recall(reader)
    assert flush_recall_counts() == 3
    assert flush_recall_counts() == 0
    _recall(reader)
    flush_recall_counts()
    assert list(_stored(reader.project)) == [(timezone.now().date(), 4)]


def test_counts_of_a_deleted_project_are_dropped(project_a, project_b):
    count_recall(project_a.pk)
    count_recall(project_b.pk)
    project_b.delete()
    assert flush_recall_counts() == 2
    assert list(RecallStat.objects.values_list("project_id", "count")) == [(project_a.pk, 1)]
    assert pending_recall_counts() == {}


@pytest.mark.django_db(transaction=True)
def test_the_flusher_thread_writes_counts_on_its_own(settings):
    from tenants.services import ensure_project

    project = ensure_project("acme", "support", actor=None)
    recall_stats.stop_flusher()  # forget that this process already decided: no thread
    settings.ENGRAMIA_RECALL_STATS_FLUSH_SECONDS = 0.05
    try:
        count_recall(project.pk)
        deadline = time.monotonic() + 10
        while not RecallStat.objects.filter(project=project).exists():
            assert time.monotonic() < deadline, "the flusher never wrote the count"
            time.sleep(0.02)
    finally:
        settings.ENGRAMIA_RECALL_STATS_FLUSH_SECONDS = 0
        recall_stats.stop_flusher()
    assert RecallStat.objects.get(project=project).count == 1
