"""Every console list costs the same queries whatever it holds, and none counts a whole table."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.admin.conftest import StaffWorld, _user

CHANGELISTS = [
    "/admin/memory/pattern/",
    "/admin/memory/document/",
    "/admin/skills/skill/",
    "/admin/conversations/sessionitem/",
    "/admin/jobs/job/",
    "/admin/tenants/apikey/",
    "/admin/tenants/membership/",
    "/admin/tenants/project/",
    "/admin/tenants/auditentry/",
]
MORE = 12


def _grow(world: StaffWorld) -> None:
    """MORE more records of every listed kind in both of acme's projects."""
    from conversations.services import add_session_items
    from engramia_site.request_context import acting_as
    from jobs.services import submit_job
    from memory.models import Pattern
    from memory.services import add_document, add_evaluation, learn_pattern
    from skills.services import register_skill
    from tenants.services import create_api_key, set_membership

    for scope in (world.support, world.billing):
        project, member = scope.project, scope.member
        with acting_as(member):
            for index in range(MORE):
                mark = f"{project.slug}-{index}"
                learned = learn_pattern(
                    project=project, task=f"grow {mark} task", code="x", actor=None
                )
                pattern = Pattern.objects.get(pk=learned.pattern_id)
                add_evaluation(pattern=pattern, score=index % 10, actor=member)
                add_document(project=project, name=f"{mark}.txt", text=mark, actor=None)
                register_skill(actor=member, project=project, name=f"tool_{index}")
                add_session_items(
                    project=project,
                    session_id=f"chat-{mark}",
                    items=[{"role": "user", "content": mark}],
                    actor=None,
                )
                submit_job(project=project, kind="aging", actor=member, enqueue=False)
                person = _user(f"person-{mark}@acme.test")
                set_membership(user=person, scope=project, role="reader", actor=None)
                create_api_key(
                    user=person,
                    tenant=project.tenant,
                    project=project,
                    name=f"key-{mark}",
                    role="reader",
                    actor=None,
                )


def _queries(client: Any, url: str) -> list[str]:
    client.get(url)  # warm per-request caches (content types, permissions)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return [query["sql"] for query in captured]


@pytest.mark.parametrize("persona", ["owner", "root"])
def test_each_list_costs_the_same_queries_at_any_size(staff_world, persona):
    client = staff_world.client(getattr(staff_world, persona))
    small = {url: _queries(client, url) for url in CHANGELISTS}
    _grow(staff_world)
    for url in CHANGELISTS:
        large = _queries(client, url)
        assert len(large) == len(small[url]), (url, large)


@pytest.mark.parametrize("url", ["/admin/memory/pattern/", "/admin/tenants/auditentry/"])
def test_the_large_lists_never_count_the_whole_table(staff_world, url):
    for sql in _queries(staff_world.client(staff_world.owner), url):
        assert not ("COUNT(*)" in sql and "LIMIT" not in sql), sql
