"""Pattern curation in the admin: merge, human scores, judge jobs, filters, a fast list."""

from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from engramia_site.errors import InvalidInput
from jobs.models import Job
from memory.models import Evaluation, Pattern
from memory.services import add_evaluation, learn_pattern, merge_patterns
from tenants import admin_paging
from tenants.models import AuditEntry
from tenants.services import bootstrap, ensure_project, set_membership

pytestmark = pytest.mark.django_db


def _client(user):
    client = Client()
    client.force_login(user)
    return client


def _learn(project, task, score=None, **fields):
    result = learn_pattern(
        project=project, task=task, code="x", eval_score=score, actor=None, **fields
    )
    return Pattern.objects.get(pk=result.pattern_id)


@pytest.fixture
def acme():
    return bootstrap(tenant_slug="acme", project_slug="support", email="o@acme.test", actor=None)


@pytest.fixture
def reader(acme, django_user_model):
    user = django_user_model.objects.create_user("r@acme.test", "r@acme.test", "pw", is_staff=True)
    set_membership(user=user, scope=acme.project, role="reader", actor=None)
    return user


def test_merge_keeps_the_better_pattern_with_both_evaluations(acme):
    weak = _learn(acme.project, "parse invoices from pdf", 3)
    strong = _learn(acme.project, "parse pdf invoices", 9)
    kept = merge_patterns(patterns=[weak, strong], actor=acme.user)
    weak.refresh_from_db()
    assert kept.pk == strong.pk and not kept.archived
    assert weak.archived and weak.metadata["merged_into"] == strong.pk
    assert sorted(Evaluation.objects.filter(pattern=kept).values_list("score", flat=True)) == [3, 9]
    assert kept.eval_count == 2 and weak.eval_count == 0
    moved = AuditEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Evaluation), action=AuditEntry.Action.UPDATE
    )
    assert moved.count() == 1 and moved.get().actor == acme.user


def test_merge_refuses_patterns_of_two_projects(acme):
    other = ensure_project("acme", "billing", actor=None)
    with pytest.raises(InvalidInput):
        merge_patterns(
            patterns=[_learn(acme.project, "a task"), _learn(other, "a task")], actor=acme.user
        )


def test_the_merge_button_leaves_one_live_pattern(acme):
    weak = _learn(acme.project, "send the refund email", 2)
    strong = _learn(acme.project, "send a refund email", 8)
    page = _client(acme.user).post(
        f"/admin/memory/pattern/{weak.pk}/merge/", {"merge_with": strong.pk}
    )
    assert page.status_code == 302 and page["Location"].endswith(f"/{strong.pk}/change/")
    assert list(Pattern.objects.live().values_list("pk", flat=True)) == [strong.pk]
    assert Evaluation.objects.filter(pattern=strong).count() == 2


def test_a_reader_cannot_merge_and_nobody_merges_what_they_cannot_see(acme, reader):
    one, two = _learn(acme.project, "task one"), _learn(acme.project, "task two")
    foreign = _learn(ensure_project("globex", "research", actor=None), "globex plan")
    assert (
        _client(reader)
        .post(f"/admin/memory/pattern/{one.pk}/merge/", {"merge_with": two.pk})
        .status_code
        == 403
    )
    assert (
        _client(acme.user)
        .post(f"/admin/memory/pattern/{one.pk}/merge/", {"merge_with": foreign.pk})
        .status_code
        == 404
    )
    assert _client(acme.user).get(f"/admin/memory/pattern/{one.pk}/merge/").status_code == 405
    assert Pattern.objects.live().count() == 3


def test_a_human_score_and_a_judge_job_from_the_pattern_page(acme):
    pattern = _learn(acme.project, "rotate tls certificates")
    client = _client(acme.user)
    page = client.post(
        f"/admin/memory/pattern/{pattern.pk}/change/",
        {
            "task": pattern.task,
            "code": "certbot renew",
            "output": "",
            "metadata": "{}",
            "human_score": "7.5",
            "human_feedback": "works, but slow",
            "evaluations-TOTAL_FORMS": "0",
            "evaluations-INITIAL_FORMS": "0",
        },
    )
    assert page.status_code == 302, page.context and page.context["adminform"].form.errors
    evaluation = Evaluation.objects.get(pattern=pattern)
    assert (evaluation.score, evaluation.evaluator, evaluation.actor) == (7.5, "human", acme.user)
    assert Pattern.objects.get(pk=pattern.pk).code == "certbot renew"
    client.post(f"/admin/memory/pattern/{pattern.pk}/reevaluate/")
    job = Job.objects.get(kind="evaluate")
    assert job.params["pattern_id"] == pattern.pk and job.actor == acme.user


def test_the_pattern_page_shows_highlighted_code_history_and_neighbours(acme, reader):
    pattern = _learn(acme.project, "parse invoices from pdf files", 4)
    add_evaluation(pattern=pattern, score=6, feedback="handles scans", actor=None)
    near = _learn(acme.project, "parse invoices from pdf documents")
    for user, merge in ((acme.user, True), (reader, False)):
        html = _client(user).get(f"/admin/memory/pattern/{pattern.pk}/change/").content.decode()
        assert 'class="eng-highlight"' in html
        assert "handles scans" in html and 'id="evaluation-history"' in html
        assert f"#{near.pk}</a>" in html
        assert ('name="merge_with"' in html) is merge


def test_filters_stale_source_and_similar(acme):
    old = _learn(acme.project, "an old habit", created_at=timezone.now() - timedelta(days=400))
    imported = _learn(acme.project, "an imported pattern", source="import")
    invoices = _learn(acme.project, "parse invoices from pdf")
    client = _client(acme.user)

    def ids(**params):
        return [
            p.pk for p in client.get("/admin/memory/pattern/", params).context["cl"].result_list
        ]

    assert ids(stale="stale") == [old.pk]
    assert ids(source="import") == [imported.pk]
    assert ids(similar="invoices in pdf form")[0] == invoices.pk


def test_the_pattern_list_costs_the_same_queries_at_any_size(acme):
    client = _client(acme.user)
    _learn(acme.project, "first")
    client.get("/admin/memory/pattern/")
    with CaptureQueriesContext(connection) as small:
        client.get("/admin/memory/pattern/")
    other = ensure_project("acme", "billing", actor=None)
    for index in range(25):
        _learn(
            other if index % 2 else acme.project,
            f"pattern number {index} of {index * 3}",
            index % 10,
        )
    with CaptureQueriesContext(connection) as large:
        page = client.get("/admin/memory/pattern/")
    assert len(page.context["cl"].result_list) == 26
    assert len(large) == len(small)
    assert not any("COUNT(*)" in q["sql"] and "LIMIT" not in q["sql"] for q in large)


def test_a_long_list_shows_the_planners_estimate_not_a_full_count(acme, monkeypatch):
    for index in range(6):
        _learn(acme.project, f"task {index} about {index * 11}")
    monkeypatch.setattr(admin_paging, "EXACT_COUNT_LIMIT", 3)
    with CaptureQueriesContext(connection) as queries:
        page = _client(acme.user).get("/admin/memory/pattern/")
    cl = page.context["cl"]
    assert cl.paginator.estimated and cl.result_count > 3
    assert any(q["sql"].startswith("EXPLAIN") for q in queries)
