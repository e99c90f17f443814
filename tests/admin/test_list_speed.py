"""A changelist builds its column headers once per page, not once per row."""

import pytest
from django.test import Client

from console import list_speed
from memory.services import learn_pattern
from tenants.services import bootstrap

pytestmark = pytest.mark.django_db


def test_the_pattern_list_builds_its_headers_once_for_all_rows(monkeypatch):
    made = bootstrap(tenant_slug="acme", project_slug="support", email="o@acme.test", actor=None)
    for index in range(5):
        learn_pattern(
            project=made.project, task=f"task {index} of {index * 7}", code="x", actor=None
        )
    builds = []
    build = list_speed._build_headers

    def counted(cl):
        builds.append(cl)
        return build(cl)

    monkeypatch.setattr(list_speed, "_build_headers", counted)
    client = Client()
    client.force_login(made.user)
    page = client.get("/admin/memory/pattern/", {"o": "2"})
    assert page.status_code == 200
    assert len(page.context["cl"].result_list) == 5
    assert len(builds) == 1
    assert "?o=" in page.content.decode()  # the headers still carry their sort links
