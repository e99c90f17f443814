"""The recall playground: a recall as the signed-in user, explained factor by factor."""

from types import SimpleNamespace

import pytest
from django.test import Client

from memory.models import Pattern
from memory.services import learn_pattern, update_pattern
from tenants.services import bootstrap, ensure_project, set_membership

pytestmark = pytest.mark.django_db


def _client(user):
    client = Client()
    client.force_login(user)
    return client


def _learn(project, task, score=None):
    return learn_pattern(
        project=project, task=task, code="x", eval_score=score, actor=None
    ).pattern_id


@pytest.fixture
def acme():
    made = bootstrap(tenant_slug="acme", project_slug="support", email="o@acme.test", actor=None)
    return SimpleNamespace(
        user=made.user,
        project=made.project,
        invoices=_learn(made.project, "parse invoices from pdf files", 9),
        refunds=_learn(made.project, "send the refund email to a customer", 4),
        certificates=_learn(made.project, "rotate the tls certificates", 6),
    )


def _run(client, project, task, **options):
    return client.get("/admin/playground/", {"project": project.pk, "task": task, **options})


def test_the_playground_ranks_the_seeded_pattern_first_with_its_factors(acme):
    page = _run(_client(acme.user), acme.project, "parse invoices from pdf", eval_weighted="on")
    assert page.status_code == 200
    result = page.context["result"]
    top = result.matches[0]
    assert top.pattern_id == acme.invoices
    assert top.explain["eval_multiplier"] == 1.4
    assert result.strategy == "exact"
    html = page.content.decode()
    assert html.count('<meter class="eng-bar"') == 3 * len(result.matches)
    assert "parse invoices from pdf files" in html and 'id="playground-time"' in html


def test_why_not_ranks_a_pattern_below_the_limit(acme):
    page = _run(
        _client(acme.user), acme.project, "parse invoices from pdf", limit=1, why_not=acme.refunds
    )
    why = page.context["why_not"]
    assert why.pattern_id == acme.refunds and not why.returned
    assert why.rank is not None and why.rank > 1
    assert any("below the limit of 1" in reason for reason in why.reasons)


def test_why_not_says_an_archived_pattern_is_never_recalled(acme):
    update_pattern(
        pattern=Pattern.objects.get(pk=acme.certificates), changes={"archived": True}, actor=None
    )
    why = _run(_client(acme.user), acme.project, "rotate tls", why_not=acme.certificates).context[
        "why_not"
    ]
    assert why.rank is None and "archived" in why.reasons[0]


def test_the_playground_offers_only_the_users_projects(acme):
    foreign = ensure_project("globex", "research", actor=None)
    secret = _learn(foreign, "globex secret plan", 9)
    client = _client(acme.user)
    page = _run(client, foreign, "secret plan")
    assert page.context["form"].errors["project"]
    assert "result" not in page.context
    page = _run(client, acme.project, "secret plan", why_not=secret)
    assert page.context["form"].errors["why_not"]
    html = page.content.decode().lower()
    assert "globex" not in html  # neither the project nor its pattern's task


def test_a_project_reader_can_try_a_recall(acme, django_user_model):
    reader = django_user_model.objects.create_user(
        "r@acme.test", "r@acme.test", "pw", is_staff=True
    )
    set_membership(user=reader, scope=acme.project, role="reader", actor=None)
    page = _run(_client(reader), acme.project, "refund email")
    assert page.context["result"].matches[0].pattern_id == acme.refunds
