"""Skill curation in the admin: scoped lists, publish actions through services, inlines."""

from __future__ import annotations

from typing import Any

from django.test import Client

from skills.models import Skill
from skills.services import evaluate_skill, link_pattern_skill
from tenants.models import AuditEntry


def _staff_client(persona: Any) -> Client:
    persona.user.is_staff = True
    persona.user.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(persona.user)
    return client


def test_staff_see_only_skills_their_projects_own(owner, make_skill, project_a, project_b):
    make_skill(project_a, "acme_tool")
    make_skill(project_b, "globex_public_tool", visibility="public")
    response = _staff_client(owner).get("/admin/skills/skill/")
    assert response.status_code == 200
    assert b"acme_tool" in response.content
    assert b"globex_public_tool" not in response.content


def test_publish_action_goes_through_the_service_and_is_audited(owner, make_skill, project_a):
    skill = make_skill(project_a, "acme_tool")
    response = _staff_client(owner).post(
        "/admin/skills/skill/",
        {"action": "publish_public", "_selected_action": [skill.pk]},
    )
    assert response.status_code == 302
    skill.refresh_from_db()
    assert skill.visibility == "public"
    entry = AuditEntry.objects.filter(
        content_type__model="skill", object_pk=str(skill.pk), action=AuditEntry.Action.UPDATE
    ).get()
    assert entry.actor == owner.user
    assert entry.changes_dict["visibility"] == ["project", "public"]


def test_a_reader_cannot_publish_from_the_admin(reader, make_skill, project_a):
    skill = make_skill(project_a, "acme_tool")
    _staff_client(reader).post(
        "/admin/skills/skill/",
        {"action": "publish_public", "_selected_action": [skill.pk]},
    )
    skill.refresh_from_db()
    assert skill.visibility == "project"


def test_change_page_shows_evaluations_usages_and_versions(
    owner, outsider, make_skill, project_a, project_b
):
    skill = make_skill(project_a, "acme_tool", visibility="public")
    evaluate_skill(actor=owner.user, skill=skill, project=project_a, score=8, feedback="solid")
    evaluate_skill(actor=outsider.user, skill=skill, project=project_b, score=3, feedback="meh")
    link_pattern_skill(skill=skill, project=project_a, pattern_id=4242, actor=None)
    link_pattern_skill(skill=skill, project=project_b, pattern_id=9999, actor=None)
    response = _staff_client(owner).get(f"/admin/skills/skill/{skill.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "solid" in page and "meh" in page
    assert "4242" in page
    assert "9999" not in page and "globex" not in page  # another tenant's usage stays anonymous
    assert "another tenant" in page


def test_eval_filter_narrows_the_list(owner, make_skill, project_a):
    good = make_skill(project_a, "good_tool")
    make_skill(project_a, "unrated_tool")
    evaluate_skill(actor=None, skill=good, project=project_a, score=9)
    client = _staff_client(owner)
    high = client.get("/admin/skills/skill/", {"eval": "high"}).content
    assert b"good_tool" in high and b"unrated_tool" not in high
    unrated = client.get("/admin/skills/skill/", {"eval": "unrated"}).content
    assert b"unrated_tool" in unrated and b"good_tool" not in unrated


def test_deleting_in_the_admin_uses_the_service(owner, make_skill, project_a):
    skill = make_skill(project_a, "acme_tool")
    response = _staff_client(owner).post(f"/admin/skills/skill/{skill.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Skill.objects.filter(pk=skill.pk).exists()


def test_admin_search_finds_names_descriptions_and_tags(owner, make_skill, project_a):
    make_skill(project_a, "refund_order", tags=["payments"])
    make_skill(project_a, "weather", description="Forecasts for any city.")
    client = _staff_client(owner)
    by_tag = client.get("/admin/skills/skill/", {"q": "payments"})
    assert by_tag.status_code == 200
    assert b"refund_order" in by_tag.content and b">weather<" not in by_tag.content
    by_words = client.get("/admin/skills/skill/", {"q": "forecasts"}).content
    assert b"weather" in by_words and b"refund_order" not in by_words


def test_the_skill_page_shows_schema_diffs_visibility_and_exports(owner, make_skill, project_a):
    from skills.services import publish_skill, update_skill

    skill = make_skill(project_a, "lookup_order")
    update_skill(
        actor=owner.user,
        skill=skill,
        parameters={
            "type": "object",
            "properties": {
                "order_id": {"type": "string", "description": "The order's number"},
                "verbose": {"type": "boolean"},
            },
            "required": ["order_id"],
        },
    )
    publish_skill(actor=owner.user, skill=Skill.objects.get(pk=skill.pk), visibility="tenant")
    html = _staff_client(owner).get(f"/admin/skills/skill/{skill.pk}/change/").content.decode()
    assert 'id="skill-parameters"' in html and "The order&#x27;s number" in html
    assert "version 2 against 1" in html and 'class="eng-highlight"' in html
    assert "order_id" in html.split("version 2 against 1", 1)[1]
    assert 'id="skill-visibility-history"' in html and "owner@acme.test" in html
    assert '"input_schema"</span>' in html, "the Anthropic tool"
    assert '"strict"</span>' in html, "the OpenAI tool"
