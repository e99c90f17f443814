"""The registry's services called directly, as the importer, the SDK and the admin do."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from engramia_site.request_context import acting_as
from skills.models import Skill, SkillEvaluation, SkillUsage, SkillVersion
from skills.services import (
    SkillNameTaken,
    evaluate_skill,
    link_pattern_skill,
    publish_skill,
    register_function_tools,
    register_skill,
    unpublish_skill,
    update_skill,
)
from tenants.models import AuditEntry

ASSISTANT_TOOLS = [
    {"type": "code_interpreter"},
    {
        "type": "function",
        "function": {
            "name": "get_order",
            "description": "Fetch an order by id.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
        },
    },
    {"type": "file_search"},
    {"type": "function", "function": {"name": "ping", "description": "Check liveness."}},
]


def test_register_function_tools_makes_project_skills_from_function_tools(project_a):
    skills = register_function_tools(project=project_a, tools=ASSISTANT_TOOLS, actor=None)
    assert [skill.name for skill in skills] == ["get_order", "ping"]
    get_order, ping = skills
    assert get_order.project == project_a and get_order.visibility == "project"
    assert get_order.source == "assistants"
    assert get_order.parameters["required"] == ["order_id"]
    assert ping.parameters == {"type": "object", "properties": {}}
    assert Skill.objects.filter(project=project_a).count() == 2


def test_register_function_tools_is_idempotent(project_a):
    first = register_function_tools(project=project_a, tools=ASSISTANT_TOOLS, actor=None)
    audit_count = AuditEntry.objects.count()
    second = register_function_tools(project=project_a, tools=ASSISTANT_TOOLS, actor=None)
    assert [s.pk for s in second] == [s.pk for s in first]
    assert Skill.objects.filter(project=project_a).count() == 2
    assert SkillVersion.objects.filter(skill__project=project_a).count() == 2
    assert all(skill.version == 1 for skill in Skill.objects.filter(project=project_a))
    assert AuditEntry.objects.count() == audit_count  # nothing changed, nothing logged


def test_register_function_tools_updates_a_changed_tool_as_a_new_version(project_a):
    register_function_tools(project=project_a, tools=ASSISTANT_TOOLS, actor=None)
    changed = [
        {
            "type": "function",
            "function": {
                "name": "get_order",
                "description": "Fetch an order.",
                "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}},
            },
        }
    ]
    (skill,) = register_function_tools(project=project_a, tools=changed, actor=None)
    assert skill.version == 2
    old = SkillVersion.objects.get(skill=skill, version=1)
    assert old.parameters["required"] == ["order_id"]


def test_register_function_tools_accepts_a_bare_properties_schema(project_a):
    tools = [
        {
            "type": "function",
            "function": {"name": "f", "parameters": {"properties": {"x": {"type": "string"}}}},
        }
    ]
    (skill,) = register_function_tools(project=project_a, tools=tools, actor=None)
    assert skill.parameters == {"type": "object", "properties": {"x": {"type": "string"}}}


def test_register_function_tools_refuses_a_bad_tool_and_registers_none(project_a):
    tools = [
        ASSISTANT_TOOLS[1],
        {"type": "function", "function": {"name": "bad name", "parameters": {"type": "object"}}},
    ]
    with pytest.raises(ValidationError) as caught:
        register_function_tools(project=project_a, tools=tools, actor=None)
    assert "tools.1.name" in caught.value.message_dict
    assert not Skill.objects.exists()


def test_register_function_tools_audits_as_the_given_actor(owner, project_a):
    register_function_tools(project=project_a, tools=ASSISTANT_TOOLS, actor=owner.user)
    entries = AuditEntry.objects.filter(content_type__model="skill")
    assert entries.count() == 2
    assert {entry.actor_id for entry in entries} == {owner.user.pk}


def test_a_skill_cannot_be_saved_with_an_invalid_schema(project_a):
    skill = Skill(
        tenant=project_a.tenant,
        project=project_a,
        name="x",
        parameters={"type": "object", "properties": 5},
    )
    with pytest.raises(ValidationError) as caught:
        skill.save()
    assert "parameters" in caught.value.message_dict
    assert not Skill.objects.exists()


def test_register_refuses_a_taken_name(project_a):
    register_skill(actor=None, project=project_a, name="x")
    with pytest.raises(SkillNameTaken):
        register_skill(actor=None, project=project_a, name="x")


def test_tenant_owned_skills_are_seen_by_every_project_of_the_tenant(
    project_a, project_billing, project_b
):
    skill = register_skill(
        actor=None,
        project=None,
        tenant=project_a.tenant,
        name="house_style",
        visibility="tenant",
    )
    assert Skill.objects.visible_to(project_billing).filter(pk=skill.pk).exists()
    assert not Skill.objects.visible_to(project_b).filter(pk=skill.pk).exists()
    # Owned by no project, so no project's key manages it.
    assert not Skill.objects.managed_from(project_a).filter(pk=skill.pk).exists()
    with pytest.raises(ValidationError):
        register_skill(actor=None, project=None, tenant=project_a.tenant, name="p")
    unpublished = unpublish_skill(actor=None, skill=skill)
    assert unpublished.visibility == "tenant"


def test_publish_and_unpublish_change_visibility_only(project_a):
    skill = register_skill(actor=None, project=project_a, name="x")
    published = publish_skill(actor=None, skill=skill)
    assert published.visibility == "public" and published.version == 1
    assert unpublish_skill(actor=None, skill=published).visibility == "project"
    with pytest.raises(ValidationError):
        publish_skill(actor=None, skill=skill, visibility="project")


def test_update_re_embeds_when_the_words_change(project_a):
    skill = register_skill(actor=None, project=project_a, name="x", description="Weather.")
    before = list(Skill.objects.get(pk=skill.pk).embedding)
    update_skill(actor=None, skill=skill, tags=["other"])
    assert list(Skill.objects.get(pk=skill.pk).embedding) != before


def test_evaluating_a_skill_the_project_cannot_see_fails(project_a, project_b):
    hidden = register_skill(actor=None, project=project_a, name="hidden")
    with pytest.raises(Skill.DoesNotExist):
        evaluate_skill(actor=None, skill=hidden, project=project_b, score=5)
    assert not SkillEvaluation.objects.exists()


def test_an_outsiders_evaluation_is_audited_in_its_own_tenant(outsider, project_a, project_b):
    shared = register_skill(actor=None, project=project_a, name="shared", visibility="public")
    with acting_as(outsider.user):
        evaluation = evaluate_skill(
            actor=outsider.user, skill=shared, project=project_b, score=7, feedback="fine"
        )
    entry = AuditEntry.objects.get(
        content_type__model="skillevaluation", object_pk=str(evaluation.pk)
    )
    assert entry.tenant_id == project_b.tenant_id and entry.project_id == project_b.pk
    assert entry.actor == outsider.user


def test_only_the_ten_most_recent_evaluations_count(project_a):
    skill = register_skill(actor=None, project=project_a, name="x")
    for _ in range(10):
        evaluate_skill(actor=None, skill=skill, project=project_a, score=1)
    for _ in range(10):
        evaluate_skill(actor=None, skill=skill, project=project_a, score=9)
    skill.refresh_from_db()
    assert skill.eval_score == 9.0 and skill.evaluation_count == 20


def test_link_pattern_skill_is_idempotent_and_scoped(project_a, project_b):
    skill = register_skill(actor=None, project=project_a, name="x")
    first = link_pattern_skill(skill=skill, project=project_a, pattern_id=41, actor=None)
    again = link_pattern_skill(skill=skill.pk, project=project_a, pattern_id=41, actor=None)
    assert first.pk == again.pk
    assert SkillUsage.objects.filter(skill=skill).count() == 1
    with pytest.raises(Skill.DoesNotExist):
        link_pattern_skill(skill=skill, project=project_b, pattern_id=42, actor=None)
    publish_skill(actor=None, skill=skill)
    usage = link_pattern_skill(skill=skill, project=project_b, pattern_id=42, actor=None)
    assert usage.project == project_b
    assert AuditEntry.objects.filter(content_type__model="skillusage").count() == 2
