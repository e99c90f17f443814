"""Local mode runs its project's jobs itself, and reads its project once, not on every call."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from engramia import Memory
from jobs.choices import JobStatus
from jobs.models import Job
from memory.services.indexes import INDEX_KIND, existing_project_indexes, project_index_name
from retrieval import search as search_module
from tenants.models import Project

THRESHOLD = 3


@pytest.fixture
def large_projects_get_an_index(monkeypatch, every_large_project):
    """A project above a threshold of 3 needs its own index even when it is the only one."""
    monkeypatch.setattr(search_module, "EXACT_SEARCH_MAX_ROWS", THRESHOLD)


def _wait_for(condition, deadline_seconds: float = 120.0) -> bool:
    """Poll condition until it holds or the deadline passes (a wait, not a timing assertion)."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.mark.django_db(transaction=True)
def test_a_large_project_gets_its_index_without_a_worker(monkeypatch, large_projects_get_an_index):
    monkeypatch.setenv("ENGRAMIA_LOCAL_JOBS", "on")
    memory = Memory("solo/big")
    try:
        for index in range(THRESHOLD + 2):
            memory.learn(f"distinct task number {index} about {'xyz' * index}", "c")
        project = Project.objects.get(tenant__slug="solo", slug="big")
        name = project_index_name(project.pk, project.embedding_model)
        jobs = Job.objects.filter(project=project, kind=INDEX_KIND)
        # No qcluster runs in the tests: only the SDK's own job thread can run the build.
        assert _wait_for(lambda: jobs.filter(status=JobStatus.SUCCEEDED).exists())
        assert existing_project_indexes(project.pk)[name].valid
        runner = memory._backend._jobs
        assert runner is not None and runner.alive
    finally:
        memory.close()
        with connection.cursor() as cursor:  # DDL outlives the test's table flush
            for index_name in existing_project_indexes():
                cursor.execute(f"DROP INDEX IF EXISTS {index_name}")
    assert not runner.alive


@pytest.mark.django_db(transaction=True)
def test_jobs_stay_queued_when_local_jobs_are_off(monkeypatch, large_projects_get_an_index):
    monkeypatch.setenv("ENGRAMIA_LOCAL_JOBS", "off")
    memory = Memory("solo/big")
    for index in range(THRESHOLD + 2):
        memory.learn(f"distinct task number {index} about {'xyz' * index}", "c")
    assert memory._backend._jobs is None
    job = Job.objects.get(kind=INDEX_KIND)
    assert job.status == JobStatus.PENDING  # left for a worker cluster


def _project_reads(queries) -> int:
    return sum('INNER JOIN "tenants_tenant"' in query["sql"] for query in queries)


@pytest.mark.django_db
def test_the_project_is_read_once_and_again_after_it_changes(project_a):
    memory = Memory("acme/support")
    memory.learn("Parse a CSV file", "csv.reader(f)")  # reads (and caches) the project
    with CaptureQueriesContext(connection) as calls:
        memory.recall("parse csv")
        memory.learn("Send an email", "smtplib")
        memory.recall("send mail")
    assert _project_reads(calls.captured_queries) == 0

    project = Project.objects.get(pk=project_a.pk)
    project.name = "Support desk"
    project.save()  # a change in this process drops the copy
    with CaptureQueriesContext(connection) as calls:
        assert memory.project_info()["name"] == "Support desk"
        memory.recall("parse csv")
    assert _project_reads(calls.captured_queries) == 1
