"""Audit review: filters, changes as field: old → new, per-object history, a streamed CSV."""

import csv
import io

import httpx
import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from memory.models import Pattern
from memory.services import LearnItem, learn_pattern, learn_patterns_bulk, update_pattern
from tenants.models import AuditEntry
from tenants.services import bootstrap, ensure_project


def _client(user):
    client = Client()
    client.force_login(user)
    return client


def _rows(body: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body)))


def _export(client, **params):
    response = client.get("/admin/tenants/auditentry/export.csv", params)
    return response, b"".join(response.streaming_content).decode() if response.streaming else ""


@pytest.fixture
def acme(db):
    return bootstrap(tenant_slug="acme", project_slug="support", email="o@acme.test", actor=None)


@pytest.mark.django_db
def test_the_csv_holds_exactly_the_filtered_rows_of_the_users_scope(acme):
    pattern = Pattern.objects.get(
        pk=learn_pattern(
            project=acme.project, task="=HYPERLINK(1)", code="x", actor=None
        ).pattern_id
    )
    update_pattern(pattern=pattern, changes={"code": "y"}, actor=acme.user)
    learn_pattern(
        project=ensure_project("globex", "research", actor=None),
        task="globex plan",
        code="x",
        actor=None,
    )
    client = _client(acme.user)
    with CaptureQueriesContext(connection) as queries:
        response, body = _export(client, action__exact=AuditEntry.Action.UPDATE)
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv"
    rows = _rows(body)
    expected = AuditEntry.objects.filter(
        tenant_id=acme.project.tenant_id, action=AuditEntry.Action.UPDATE
    )
    assert len(rows) == expected.count() >= 1
    edit = next(row for row in rows if row["resource_type"] == "memory.pattern")
    assert edit["changes"] == "code: x → y" and edit["actor"] == "o@acme.test"
    assert edit["object"].startswith("'="), "a formula is written as text"
    assert any("CURSOR" in q["sql"] for q in queries), "rows are read from a server-side cursor"
    everything = _rows(_export(client)[1])
    assert len(everything) == AuditEntry.objects.filter(tenant_id=acme.project.tenant_id).count()
    assert "globex" not in _export(client)[1]


@pytest.mark.django_db
def test_a_bad_date_is_a_400_naming_the_filter(acme):
    response = _client(acme.user).get(
        "/admin/tenants/auditentry/export.csv", {"timestamp_from": "yesterday"}
    )
    assert response.status_code == 400 and b"timestamp_from" in response.content


@pytest.mark.django_db
def test_the_audit_list_filters_by_day_and_shows_each_change(acme):
    pattern = Pattern.objects.get(
        pk=learn_pattern(
            project=acme.project, task="a task", code="old code", actor=None
        ).pattern_id
    )
    update_pattern(pattern=pattern, changes={"code": "new code"}, actor=acme.user)
    client = _client(acme.user)
    today = AuditEntry.objects.latest("timestamp").timestamp.date().isoformat()
    page = client.get(
        "/admin/tenants/auditentry/", {"timestamp_from": today, "timestamp_to": today}
    )
    html = page.content.decode()
    assert 'class="eng-old">old code</span> → <span class="eng-new">new code</span>' in html
    assert page.context["cl"].result_count == AuditEntry.objects.count()
    empty = client.get("/admin/tenants/auditentry/", {"timestamp_to": "2000-01-01"})
    assert empty.context["cl"].result_count == 0


@pytest.mark.django_db
def test_an_objects_history_is_its_audit_trail(acme):
    pattern = Pattern.objects.get(
        pk=learn_pattern(project=acme.project, task="a task", code="x", actor=None).pattern_id
    )
    update_pattern(pattern=pattern, changes={"code": "y"}, actor=acme.user)
    client = _client(acme.user)
    history = client.get(f"/admin/memory/pattern/{pattern.pk}/history/", follow=True)
    listed = list(history.context["cl"].result_list)
    assert {entry.object_pk for entry in listed} == {str(pattern.pk)}
    assert len(listed) == 2
    assert all(e.content_type == ContentType.objects.get_for_model(Pattern) for e in listed)


def test_the_csv_streams_over_the_asgi_server(asgi_server):
    made = bootstrap(tenant_slug="acme", project_slug="support", email="o@acme.test", actor=None)
    items = [
        LearnItem(task=f"imported task {i}", code="x", external_id=f"e{i}") for i in range(1500)
    ]
    learn_patterns_bulk(project=made.project, items=items, actor=None)
    session = Client()
    session.force_login(made.user)
    cookies = {"sessionid": session.cookies["sessionid"].value}
    expected = AuditEntry.objects.filter(tenant_id=made.project.tenant_id).count()
    lines = 0
    with (
        httpx.Client(base_url=asgi_server, cookies=cookies, timeout=60) as http,
        http.stream("GET", "/admin/tenants/auditentry/export.csv") as response,
    ):
        assert response.status_code == 200
        assert "content-length" not in response.headers
        for _line in response.iter_lines():
            lines += 1
    assert lines == expected + 1  # the header
