"""The console's own pages keep the admin's scoping: nothing of another tenant (or, for project
staff, of the sibling project) on the dashboard, the playground, the CSV export, the merge and
re-evaluate endpoints, history links or the theme's search, as each staff persona."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tests.admin.conftest import FOREIGN_MARK, SIBLING_MARK, StaffWorld
from tests.admin.test_admin_scoping import PERSONAS, _inside, _leaked, _marks, _outside, snapshot

pytestmark = pytest.mark.django_db


def _patterns(scopes: list[Any]) -> list[Any]:
    return [p for scope in scopes for p in scope.objects.get("memory.Pattern", [])]


def _pages(world: StaffWorld) -> list[tuple[str, dict[str, Any]]]:
    """Every console page, asked about every project (the user's and the others')."""
    pages: list[tuple[str, dict[str, Any]]] = [
        ("/admin/", {}),
        ("/admin/playground/", {}),
        ("/admin/tenants/auditentry/export.csv", {}),
        # Queries that every seeded record answers (the marks themselves would be echoed).
        ("/admin/search/", {"s": "task"}),
        ("/admin/search/", {"s": "pattern", "extended": "1"}),
        ("/admin/memory/pattern/", {"similar": "task: plan the rollout"}),
    ]
    every_pattern = _patterns([world.support, world.billing, world.research])
    for scope in (world.support, world.billing, world.research):
        project = scope.project.pk
        pages.append(("/admin/", {"project": project}))
        for pattern in every_pattern:
            pages.append(
                (
                    "/admin/playground/",
                    {"project": project, "task": "plan the rollout", "why_not": pattern.pk},
                )
            )
        pages.append(("/admin/tenants/auditentry/export.csv", {"project__id__exact": project}))
    return pages


def _body(response: Any) -> Any:
    """A response with its content read (a streamed CSV included)."""
    if not getattr(response, "streaming", False):
        return response
    return SimpleNamespace(
        status_code=response.status_code, content=b"".join(response.streaming_content)
    )


def test_the_superuser_control_sees_both_markers_on_console_pages(staff_world: StaffWorld):
    client = staff_world.client(staff_world.root)
    for url in ("/admin/", "/admin/tenants/auditentry/export.csv"):
        page = _body(client.get(url))
        assert _leaked(page, (FOREIGN_MARK, SIBLING_MARK)) == [FOREIGN_MARK, SIBLING_MARK], url
    page = client.get(
        "/admin/playground/",
        {"project": staff_world.research.project.pk, "task": "globex task: plan the rollout"},
    )
    assert _leaked(page, (FOREIGN_MARK,)) == [FOREIGN_MARK]


@pytest.mark.parametrize("persona", PERSONAS)
def test_console_pages_show_nothing_outside_the_users_scope(
    staff_world: StaffWorld, persona: str
) -> None:
    client = staff_world.client(getattr(staff_world, persona))
    marks, problems = _marks(persona), []
    for url, params in _pages(staff_world):
        page = _body(client.get(url, params))
        if page.status_code >= 500 or _leaked(page, marks):
            problems.append(f"{url} {params}: {page.status_code} {_leaked(page, marks)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("persona", PERSONAS)
def test_curation_endpoints_never_touch_patterns_outside(
    staff_world: StaffWorld, persona: str
) -> None:
    client = staff_world.client(getattr(staff_world, persona))
    inside = _patterns(_inside(staff_world, persona))
    outside = _patterns(_outside(staff_world, persona))
    # A reader changes nothing, even inside.
    targets = outside + inside if persona == "reader" else outside
    before, problems = snapshot(), []
    for pattern in outside:
        history = client.get(f"/admin/memory/pattern/{pattern.pk}/history/")
        if history.status_code == 302 and "object_pk" in history["Location"]:
            problems.append(f"history of {pattern.pk} opened")
    for pattern in targets:
        for url, data in (
            (f"/admin/memory/pattern/{pattern.pk}/merge/", {"merge_with": inside[0].pk}),
            (f"/admin/memory/pattern/{inside[0].pk}/merge/", {"merge_with": pattern.pk}),
            (f"/admin/memory/pattern/{pattern.pk}/reevaluate/", {}),
        ):
            answer = client.post(url, data)
            if answer.status_code not in (403, 404):
                problems.append(f"{url} {data}: {answer.status_code}")
    assert not problems, "\n".join(problems)
    assert snapshot() == before
