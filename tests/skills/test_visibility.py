"""Who sees and who may change which skill, through every skills endpoint (no leaks).

Personas act in acme/support (owner, editor, reader) or globex/research (outsider). Skills exist
in acme/support, in its sibling acme/billing and in globex/research, one per visibility.
"""

from __future__ import annotations

from typing import Any

import pytest

from skills.models import Skill, SkillEvaluation

VISIBLE_FROM_SUPPORT = {
    "support_project",
    "support_tenant",
    "support_public",
    "billing_tenant",
    "billing_public",
    "research_public",
}
VISIBLE_FROM_RESEARCH = {
    "research_project",
    "research_tenant",
    "research_public",
    "support_public",
    "billing_public",
}

# (persona, skill) -> expected status of get, update, evaluate, delete.
MATRIX = {
    ("owner", "support_project"): (200, 200, 201, 204),
    ("owner", "support_tenant"): (200, 200, 201, 204),
    ("owner", "support_public"): (200, 200, 201, 204),
    ("reader", "support_project"): (200, 403, 403, 403),
    ("reader", "support_tenant"): (200, 403, 403, 403),
    ("reader", "support_public"): (200, 403, 403, 403),
    ("outsider", "support_project"): (404, 404, 404, 404),
    ("outsider", "support_tenant"): (404, 404, 404, 404),
    ("outsider", "support_public"): (200, 403, 201, 403),
    # Same tenant, another project: tenant and public skills are read-only, private ones absent.
    ("owner", "billing_project"): (404, 404, 404, 404),
    ("owner", "billing_tenant"): (200, 403, 201, 403),
    ("owner", "billing_public"): (200, 403, 201, 403),
    ("editor", "support_project"): (200, 200, 201, 403),
}


def _names(response: Any) -> set[str]:
    assert response.status_code == 200, response.content
    return {item["name"] for item in response.json()["results"]}


@pytest.mark.parametrize("persona_name", ["owner", "reader"])
def test_members_list_their_project_their_tenants_shared_and_public_skills(
    persona_name, request, skills_everywhere
):
    persona = request.getfixturevalue(persona_name)
    assert _names(persona.client().get("/v1/skills")) == VISIBLE_FROM_SUPPORT


def test_outsider_lists_only_its_own_and_public_skills(outsider, skills_everywhere):
    assert _names(outsider.client().get("/v1/skills")) == VISIBLE_FROM_RESEARCH


@pytest.mark.parametrize("persona_name", ["owner", "reader", "outsider"])
def test_semantic_search_never_returns_a_skill_the_caller_cannot_see(
    persona_name, request, skills_everywhere
):
    persona = request.getfixturevalue(persona_name)
    visible = VISIBLE_FROM_RESEARCH if persona_name == "outsider" else VISIBLE_FROM_SUPPORT
    for name, skill in skills_everywhere.items():
        # The query is the hidden skill's own description: the best possible match for it.
        response = persona.client().get("/v1/skills", {"q": skill.description, "limit": 50})
        found = _names(response)
        assert found <= visible
        assert (name in found) == (name in visible), name


@pytest.mark.parametrize(("persona_name", "skill_key"), sorted(MATRIX))
def test_visibility_matrix(persona_name, skill_key, request, skills_everywhere):
    persona = request.getfixturevalue(persona_name)
    skill = skills_everywhere[skill_key]
    expected_get, expected_update, expected_evaluate, expected_delete = MATRIX[
        (persona_name, skill_key)
    ]
    client = persona.client()
    url = f"/v1/skills/{skill.pk}"

    got = client.get(url)
    assert got.status_code == expected_get
    if expected_get == 200:
        assert got.json()["name"] == skill_key
        assert client.get(f"{url}/tool").status_code == 200
        assert client.get(f"{url}/versions").status_code == 200
    else:
        assert client.get(f"{url}/tool").status_code == 404
        assert client.get(f"{url}/versions").status_code == 404

    updated = client.patch(url, {"description": "Rewritten."}, format="json")
    assert updated.status_code == expected_update, updated.content
    skill.refresh_from_db()
    assert (skill.description == "Rewritten.") == (expected_update == 200)

    evaluated = client.post(f"{url}/evaluations", {"score": 8}, format="json")
    assert evaluated.status_code == expected_evaluate, evaluated.content
    made = SkillEvaluation.objects.filter(skill=skill).count()
    assert made == (1 if expected_evaluate == 201 else 0)

    deleted = client.delete(url)
    assert deleted.status_code == expected_delete
    assert Skill.objects.filter(pk=skill.pk).exists() == (expected_delete != 204)


def test_errors_for_hidden_skills_do_not_reveal_they_exist(outsider, skills_everywhere):
    hidden = skills_everywhere["support_project"]
    missing_id = Skill.objects.order_by("-pk").first().pk + 1000
    client = outsider.client()
    hidden_answer = client.get(f"/v1/skills/{hidden.pk}").json()
    missing_answer = client.get(f"/v1/skills/{missing_id}").json()
    assert hidden_answer == missing_answer
    assert hidden.name not in str(hidden_answer)


def test_outsider_sees_the_publisher_tenant_but_not_its_project(outsider, skills_everywhere):
    body = outsider.client().get(f"/v1/skills/{skills_everywhere['support_public'].pk}").json()
    assert body["tenant"] == "acme"
    assert body["project"] is None
    assert body["editable"] is False
    own = outsider.client().get(f"/v1/skills/{skills_everywhere['research_project'].pk}").json()
    assert own["project"] == "research" and own["editable"] is True


def test_unpublishing_hides_a_skill_from_other_tenants_at_once(owner, outsider, skills_everywhere):
    skill = skills_everywhere["support_public"]
    assert outsider.client().get(f"/v1/skills/{skill.pk}").status_code == 200
    response = owner.client().patch(
        f"/v1/skills/{skill.pk}", {"visibility": "project"}, format="json"
    )
    assert response.status_code == 200
    assert outsider.client().get(f"/v1/skills/{skill.pk}").status_code == 404
    assert "support_public" not in _names(outsider.client().get("/v1/skills"))


@pytest.mark.parametrize("visibility", ["tenant", "public"])
def test_an_editor_cannot_publish(editor, visibility, make_skill, project_a):
    skill = make_skill(project_a, "draft")
    client = editor.client()
    created = client.post("/v1/skills", {"name": "shout", "visibility": visibility}, format="json")
    assert created.status_code == 403
    assert not Skill.objects.filter(name="shout").exists()
    patched = client.patch(f"/v1/skills/{skill.pk}", {"visibility": visibility}, format="json")
    assert patched.status_code == 403
    skill.refresh_from_db()
    assert skill.visibility == "project"


def test_an_admin_can_publish_on_create(owner):
    response = owner.client().post(
        "/v1/skills", {"name": "shared_tool", "visibility": "public"}, format="json"
    )
    assert response.status_code == 201
    assert Skill.objects.get(name="shared_tool").visibility == "public"


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("project", {"support_project", "support_tenant", "support_public"}),
        (
            "tenant",
            {
                "support_project",
                "support_tenant",
                "support_public",
                "billing_tenant",
                "billing_public",
            },
        ),
        ("public", {"support_public", "billing_public", "research_public"}),
        ("all", VISIBLE_FROM_SUPPORT),
    ],
)
def test_scope_filter_narrows_what_is_visible(reader, skills_everywhere, scope, expected):
    assert _names(reader.client().get("/v1/skills", {"scope": scope})) == expected


def test_a_bad_scope_is_a_400_naming_scope(reader):
    response = reader.client().get("/v1/skills", {"scope": "everything"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "scope"


def test_requests_without_a_key_are_401(db):
    from rest_framework.test import APIClient

    assert APIClient().get("/v1/skills").status_code == 401
