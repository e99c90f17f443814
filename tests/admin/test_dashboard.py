"""The dashboard: the numbers of the user's own projects, at a fixed number of queries."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from jobs.models import Job
from jobs.services import submit_job
from memory.models import Pattern
from memory.operations import recall
from memory.recall_stats import flush_recall_counts
from memory.services import add_evaluation, learn_pattern, update_pattern
from tenants.services import bootstrap, ensure_project

pytestmark = pytest.mark.django_db


def _client(user):
    client = Client()
    client.force_login(user)
    return client


def _learn(project, task, score=None):
    result = learn_pattern(project=project, task=task, code="x", eval_score=score, actor=None)
    return Pattern.objects.get(pk=result.pattern_id)


@pytest.fixture
def acme():
    return bootstrap(tenant_slug="acme", project_slug="support", email="o@acme.test", actor=None)


@pytest.fixture
def seeded(acme):
    """acme/support: 2 live (one unrated), 1 archived, 2 recalls; globex: 1 pattern, 5 recalls."""
    project = acme.project
    kept = _learn(project, "parse invoices from pdf", 8)
    update_pattern(pattern=kept, changes={"archived": True}, actor=None)
    rated = _learn(project, "send the refund email", 2)
    _learn(project, "rotate tls certificates")
    for _ in range(2):
        add_evaluation(
            pattern=rated, score=3, evaluator="llm:judge", feedback="Too slow.", actor=None
        )
    add_evaluation(pattern=rated, score=4, evaluator="llm:judge", feedback="no tests", actor=None)
    for _ in range(2):
        recall(project=project, data={"task": "invoices"})
    foreign = ensure_project("globex", "research", actor=None)
    _learn(foreign, "globex secret plan", 9)
    for _ in range(5):
        recall(project=foreign, data={"task": "plan"})
    failed = submit_job(project=project, kind="aging", actor=None, enqueue=False)
    Job.objects.filter(pk=failed.pk).update(status="failed")
    running = submit_job(project=project, kind="aging", actor=None, enqueue=False)
    Job.objects.filter(pk=running.pk).update(status="running")
    submit_job(project=foreign, kind="aging", actor=None, enqueue=False)
    return acme


def test_the_dashboard_shows_the_numbers_of_the_owners_projects(seeded):
    page = _client(seeded.user).get("/admin/")
    assert page.status_code == 200
    stats = page.context["stats"]
    assert (stats.live, stats.archived, stats.unrated, stats.unrated_share) == (2, 1, 1, 50)
    assert stats.learned_total == 3
    assert stats.recalls_total == 2
    # The rated live pattern's score is the median of 2, 3, 3, 4: band 3.
    assert stats.score_histogram[3] == 1 and sum(stats.score_histogram) == 1
    assert stats.top_feedback[0] == {"feedback_key": "too slow", "count": 2}
    assert (stats.jobs_running, stats.jobs_failed) == (1, 1)
    assert [row["path"] for row in stats.projects] == ["acme/support"]
    html = page.content.decode()
    assert 'id="stat-live">2<' in html and 'id="stat-recalls">2<' in html
    assert "globex" not in html.lower()


def test_the_dashboard_narrows_to_one_of_the_users_projects(seeded):
    other = ensure_project("acme", "billing", actor=None)
    _learn(other, "billing only task")
    client = _client(seeded.user)
    narrowed = client.get("/admin/", {"project": other.pk}).context["stats"]
    assert (narrowed.live, narrowed.recalls_total) == (1, 0)
    foreign = ensure_project("globex", "research", actor=None)
    refused = client.get("/admin/", {"project": foreign.pk})
    assert refused.context["scope_form"].errors
    assert refused.context["stats"].live == 3  # all of the user's own projects, nothing of B's
    assert "globex" not in refused.content.decode().lower()


def test_the_dashboard_costs_the_same_queries_whatever_memory_holds(acme):
    client = _client(acme.user)
    client.get("/admin/")  # warm caches (content types, sessions)
    with CaptureQueriesContext(connection) as small:
        client.get("/admin/")
    for index in range(30):
        pattern = _learn(acme.project, f"task number {index} about topic {index * 7}", index % 10)
        add_evaluation(
            pattern=pattern, score=5, evaluator="llm:judge", feedback=f"f{index}", actor=None
        )
        recall(project=acme.project, data={"task": f"topic {index}"})
    flush_recall_counts()  # a dashboard with counts pending writes them first: one more query
    with CaptureQueriesContext(connection) as large:
        client.get("/admin/")
    assert len(large) == len(small), [q["sql"][:120] for q in large]
