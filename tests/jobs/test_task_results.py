"""django-q2's successful task results: pruned by the jobs sweep, never read whole per task."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import Failure, Success, Task
from django_q.monitor import save_task

from jobs import services
from jobs.management.commands.qcluster import Command

pytestmark = pytest.mark.django_db


def make_results(successes: int, failures: int = 0) -> list[str]:
    """Task results stopped a second apart, oldest first; the successes' ids."""
    start = timezone.now() - timedelta(hours=1)
    ids = []
    for index in range(successes + failures):
        task_id = f"task-{index:04d}"
        Task.objects.create(
            id=task_id,
            name=task_id,
            func="jobs.tasks.run_job",
            started=start + timedelta(seconds=index),
            stopped=start + timedelta(seconds=index, milliseconds=500),
            success=index < successes,
        )
        if index < successes:
            ids.append(task_id)
    return ids


def test_pruning_keeps_the_newest_successes_and_every_failure():
    successes = make_results(6, failures=2)
    with CaptureQueriesContext(connection) as queries:
        assert services.prune_task_results(keep=3) == 3
    assert sorted(Success.objects.values_list("id", flat=True)) == successes[3:]
    assert Failure.objects.count() == 2
    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 1, queries.captured_queries  # one statement, no rows read first
    assert not [q for q in queries if q["sql"].startswith("SELECT")]


@pytest.mark.django_db(transaction=True)  # the sweep closes old connections first
def test_the_cluster_sweep_prunes_to_the_kept_number(monkeypatch):
    successes = make_results(4)
    monkeypatch.setattr(services, "TASK_RESULTS_KEPT", 2)
    Command().sweep()
    assert sorted(Success.objects.values_list("id", flat=True)) == successes[2:]


def test_saving_a_result_reads_no_earlier_results():
    """django-q2 with a save limit reads every kept result after each task; ours is off."""
    make_results(5)
    now = timezone.now()
    task = {
        "id": "task-new",
        "name": "task-new",
        "func": "jobs.tasks.run_job",
        "args": (1,),
        "kwargs": {},
        "started": now,
        "stopped": now,
        "result": None,
        "success": True,
        "sync": True,  # as a worker saves it, less closing the test's connection
    }
    with CaptureQueriesContext(connection) as queries:
        save_task(task, broker=None)
    assert Success.objects.filter(id="task-new").exists()
    reads = [q["sql"] for q in queries if q["sql"].startswith("SELECT")]
    assert all('"django_q_task"."id" = ' in sql for sql in reads), reads
