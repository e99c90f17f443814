"""POST/GET/PATCH/DELETE /v1/skills: validation, versions, evaluations, exports, query counts."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from skills.models import Skill, SkillVersion
from tenants.models import AuditEntry
from tests.skills.conftest import SEARCH_TICKETS_PARAMETERS


def _errors(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["type"] == "validation_error"
    return body["errors"]


def _attrs(response: Any) -> set[str]:
    return {error["attr"] for error in _errors(response)}


def test_editor_registers_a_skill_and_gets_it_back(editor):
    response = editor.client().post(
        "/v1/skills",
        {
            "name": "search_tickets",
            "description": "Find support tickets by keyword.",
            "parameters": SEARCH_TICKETS_PARAMETERS,
            "tags": ["Support", "search", "support"],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "search_tickets"
    assert body["visibility"] == "project"
    assert body["version"] == 1
    assert body["tags"] == ["support", "search"]
    assert body["tenant"] == "acme" and body["project"] == "support"
    assert body["editable"] is True
    assert body["eval_score"] is None and body["evaluation_count"] == 0
    assert body["embedding_model"] == "hash:384"
    assert "embedding" not in body
    skill = Skill.objects.get(pk=body["id"])
    assert skill.created_by == editor.user
    assert len(skill.embedding) == 384
    fetched = editor.client().get(f"/v1/skills/{skill.pk}").json()
    assert fetched["parameters"] == SEARCH_TICKETS_PARAMETERS


def test_registration_is_audited_with_actor_and_scope(editor):
    response = editor.client().post("/v1/skills", {"name": "audited"}, format="json")
    skill = Skill.objects.get(pk=response.json()["id"])
    entry = AuditEntry.objects.get(content_type__model="skill", object_pk=str(skill.pk))
    assert entry.actor == editor.user
    assert entry.api_key_name == editor.key.name
    assert entry.tenant_id == editor.project.tenant_id
    assert entry.project_id == editor.project.pk
    assert "embedding" not in (entry.changes_dict or {})


@pytest.mark.parametrize(
    "parameters",
    [
        {"type": "object", "properties": {"x": {"type": "nonsense"}}},
        {"type": "object", "required": "x"},
        {"type": "array", "items": {"type": "string"}},
        {"properties": {"x": {"type": "string"}}},
        "a string",
        ["type", "object"],
        {"type": "object", "properties": {"x": {"minimum": "zero"}}},
    ],
)
def test_invalid_parameter_schemas_are_refused_with_attr(editor, parameters):
    response = editor.client().post(
        "/v1/skills", {"name": "broken", "parameters": parameters}, format="json"
    )
    assert _attrs(response) == {"parameters"}
    assert not Skill.objects.filter(name="broken").exists()


def test_schema_error_says_where_the_schema_is_wrong(editor):
    response = editor.client().post(
        "/v1/skills",
        {"name": "broken", "parameters": {"type": "object", "properties": {"x": {"type": 5}}}},
        format="json",
    )
    (error,) = _errors(response)
    assert error["code"] == "invalid_schema"
    assert "$.properties.x.type" in error["detail"]


@pytest.mark.parametrize(
    "name", ["has space", "dots.not.allowed", "", "x" * 65, "ünïcode", "slash/name", " lead"]
)
def test_names_that_are_not_valid_tool_names_are_refused(editor, name):
    response = editor.client().post("/v1/skills", {"name": name}, format="json")
    assert _attrs(response) == {"name"}


@pytest.mark.parametrize("name", ["a", "Search-Tickets_2", "x" * 64])
def test_valid_tool_names_are_accepted(editor, name):
    assert editor.client().post("/v1/skills", {"name": name}, format="json").status_code == 201


def test_unknown_fields_and_bad_tags_are_400s_naming_them(editor):
    unknown = editor.client().post("/v1/skills", {"name": "x", "colour": "red"}, format="json")
    assert _attrs(unknown) == {"colour"}
    tags = editor.client().post("/v1/skills", {"name": "x", "tags": ["a b"]}, format="json")
    assert _attrs(tags) == {"tags"}
    visibility = editor.client().post(
        "/v1/skills", {"name": "x", "visibility": "world"}, format="json"
    )
    assert _attrs(visibility) == {"visibility"}


def test_a_name_taken_in_the_project_is_a_409(editor, make_skill, project_a):
    make_skill(project_a, "search_tickets")
    response = editor.client().post("/v1/skills", {"name": "search_tickets"}, format="json")
    assert response.status_code == 409
    assert Skill.objects.filter(name="search_tickets").count() == 1


def test_the_same_name_may_exist_in_another_project(outsider, make_skill, project_a):
    make_skill(project_a, "search_tickets")
    response = outsider.client().post("/v1/skills", {"name": "search_tickets"}, format="json")
    assert response.status_code == 201


def test_renaming_onto_a_taken_name_is_a_409(editor, make_skill, project_a):
    make_skill(project_a, "first")
    second = make_skill(project_a, "second")
    response = editor.client().patch(f"/v1/skills/{second.pk}", {"name": "first"}, format="json")
    assert response.status_code == 409
    second.refresh_from_db()
    assert second.name == "second"


def test_changing_parameters_bumps_the_version_and_keeps_the_old_one(editor, make_skill, project_a):
    skill = make_skill(
        project_a, "search_tickets", description="Old words.", parameters=SEARCH_TICKETS_PARAMETERS
    )
    client = editor.client()
    new_parameters = {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    }
    response = client.patch(
        f"/v1/skills/{skill.pk}",
        {"parameters": new_parameters, "description": "New words."},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["version"] == 2

    versions = client.get(f"/v1/skills/{skill.pk}/versions").json()["results"]
    assert [v["version"] for v in versions] == [2, 1]
    assert [v["current"] for v in versions] == [True, False]
    assert versions[1]["parameters"] == SEARCH_TICKETS_PARAMETERS
    assert versions[1]["description"] == "Old words."
    assert versions[0]["parameters"] == new_parameters


def test_changing_only_the_description_keeps_the_version(editor, make_skill, project_a):
    skill = make_skill(project_a, "search_tickets", description="Old words.")
    response = editor.client().patch(
        f"/v1/skills/{skill.pk}", {"description": "Better words."}, format="json"
    )
    assert response.json()["version"] == 1
    (only,) = SkillVersion.objects.filter(skill=skill)
    assert only.version == 1 and only.description == "Better words."


def test_patching_the_same_parameters_is_not_a_new_version(editor, make_skill, project_a):
    skill = make_skill(project_a, "search_tickets", parameters=SEARCH_TICKETS_PARAMETERS)
    response = editor.client().patch(
        f"/v1/skills/{skill.pk}", {"parameters": SEARCH_TICKETS_PARAMETERS}, format="json"
    )
    assert response.json()["version"] == 1
    assert SkillVersion.objects.filter(skill=skill).count() == 1


def test_patch_with_an_invalid_schema_changes_nothing(editor, make_skill, project_a):
    skill = make_skill(project_a, "search_tickets", parameters=SEARCH_TICKETS_PARAMETERS)
    response = editor.client().patch(
        f"/v1/skills/{skill.pk}", {"parameters": {"type": "string"}}, format="json"
    )
    assert _attrs(response) == {"parameters"}
    skill.refresh_from_db()
    assert skill.parameters == SEARCH_TICKETS_PARAMETERS and skill.version == 1


def test_evaluations_update_the_skills_median_and_record_the_version(editor, make_skill, project_a):
    skill = make_skill(project_a, "search_tickets")
    client = editor.client()
    for score in (2, 9, 8):
        response = client.post(
            f"/v1/skills/{skill.pk}/evaluations",
            {"score": score, "feedback": "ok", "evaluator": "agent"},
            format="json",
        )
        assert response.status_code == 201
    body = response.json()
    assert body["score"] == 8 and body["version"] == 1 and body["evaluator"] == "agent_outcome"
    assert body["skill_eval_score"] == 8.0 and body["skill_evaluation_count"] == 3
    skill.refresh_from_db()
    assert skill.eval_score == 8.0 and skill.evaluation_count == 3


@pytest.mark.parametrize("score", [-0.1, 10.5, "high", None])
def test_evaluation_scores_outside_0_to_10_are_refused(editor, make_skill, project_a, score):
    skill = make_skill(project_a, "search_tickets")
    response = editor.client().post(
        f"/v1/skills/{skill.pk}/evaluations", {"score": score}, format="json"
    )
    assert _attrs(response) == {"score"}
    assert skill.evaluations.count() == 0


def test_tool_endpoint_exports_both_formats(reader, make_skill, project_a):
    skill = make_skill(
        project_a,
        "search_tickets",
        description="Find tickets.",
        parameters=SEARCH_TICKETS_PARAMETERS,
    )
    client = reader.client()
    openai = client.get(f"/v1/skills/{skill.pk}/tool", {"format": "openai"})
    assert openai.status_code == 200
    assert openai.json() == {
        "type": "function",
        "name": "search_tickets",
        "description": "Find tickets.",
        "parameters": SEARCH_TICKETS_PARAMETERS,
        "strict": False,
    }
    assert client.get(f"/v1/skills/{skill.pk}/tool").json() == openai.json()
    anthropic = client.get(f"/v1/skills/{skill.pk}/tool", {"format": "anthropic"})
    assert anthropic.json() == {
        "name": "search_tickets",
        "description": "Find tickets.",
        "input_schema": SEARCH_TICKETS_PARAMETERS,
    }
    bad = client.get(f"/v1/skills/{skill.pk}/tool", {"format": "gemini"})
    assert _attrs(bad) == {"format"}


def test_delete_needs_admin_and_removes_history(owner, editor, make_skill, project_a):
    skill = make_skill(project_a, "search_tickets")
    assert editor.client().delete(f"/v1/skills/{skill.pk}").status_code == 403
    assert owner.client().delete(f"/v1/skills/{skill.pk}").status_code == 204
    assert not Skill.objects.filter(pk=skill.pk).exists()
    assert not SkillVersion.objects.filter(skill_id=skill.pk).exists()
    assert AuditEntry.objects.filter(
        content_type__model="skill", object_pk=str(skill.pk), action=AuditEntry.Action.DELETE
    ).exists()


def test_tag_and_name_filters_combine(reader, make_skill, project_a):
    make_skill(project_a, "search_tickets", tags=["support", "search"])
    make_skill(project_a, "search_orders", tags=["billing", "search"])
    make_skill(project_a, "close_ticket", tags=["support"])
    client = reader.client()

    def names(params: dict[str, str]) -> list[str]:
        return [item["name"] for item in client.get("/v1/skills", params).json()["results"]]

    assert names({"tags": "search"}) == ["search_orders", "search_tickets"]
    assert names({"tags": "support,search"}) == ["search_tickets"]
    assert names({"tags": "SUPPORT"}) == ["close_ticket", "search_tickets"]
    assert names({"name": "TICKET"}) == ["close_ticket", "search_tickets"]
    assert names({"name": "search", "tags": "billing"}) == ["search_orders"]


def _list_queries(client: Any) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/v1/skills")
    assert response.status_code == 200
    return [query["sql"] for query in captured.captured_queries]


def test_listing_costs_a_fixed_number_of_queries_and_never_loads_vectors(
    reader, outsider, make_skill, project_a, project_b, django_assert_num_queries
):
    for index in range(3):
        make_skill(project_a, f"own_{index}")
        make_skill(project_b, f"shared_{index}", visibility="public")
    client = reader.client()
    for _ in range(2):  # the first stamps the key's last use, the second keeps the key's row
        client.get("/v1/skills")
    # the page's count and rows (tenant and project joined in); the key with its project and
    # roles is kept by the process (tenants.keyscope).
    with django_assert_num_queries(2):
        first = client.get("/v1/skills")
    assert first.json()["count"] == 6

    for index in range(3, 20):
        make_skill(project_a, f"own_{index}")
        make_skill(project_b, f"shared_{index}", visibility="public")
    with django_assert_num_queries(2):
        second = client.get("/v1/skills")
    assert second.json()["count"] == 40
    for sql in _list_queries(client):
        assert '"skills_skill"."embedding",' not in sql
        assert '"skills_skill"."embedding" ' not in sql


def test_list_is_paginated(reader, make_skill, project_a):
    for index in range(3):
        make_skill(project_a, f"skill_{index}")
    page = reader.client().get("/v1/skills", {"page_size": 2}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]


def test_a_schema_reads_back_exactly_as_written_key_order_included(editor):
    parameters = {
        "type": "object",
        "properties": {"zeta": {"type": "string"}, "alpha": {"type": "integer"}},
        "required": ["zeta"],
    }
    created = editor.client().post(
        "/v1/skills", {"name": "ordered", "parameters": parameters}, format="json"
    )
    skill_id = created.json()["id"]
    client = editor.client()
    for body in (
        client.get(f"/v1/skills/{skill_id}").json()["parameters"],
        client.get(f"/v1/skills/{skill_id}/tool").json()["parameters"],
        client.get(f"/v1/skills/{skill_id}/versions").json()["results"][0]["parameters"],
    ):
        assert list(body) == ["type", "properties", "required"]
        assert list(body["properties"]) == ["zeta", "alpha"]
