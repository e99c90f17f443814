"""Roles: the higher of tenant and project role wins; a key's role caps what its user may do."""

from tenants.choices import Role
from tenants.roles import effective_role
from tenants.services import create_api_key, set_membership


def test_higher_of_tenant_and_project_role_wins(project_a, persona_factory):
    person = persona_factory("dual@acme.test", project_a, "reader")
    set_membership(user=person.user, scope=project_a.tenant, role=Role.EDITOR, actor=None)
    assert effective_role(person.user, project_a) == Role.EDITOR
    set_membership(user=person.user, scope=project_a, role=Role.ADMIN, actor=None)
    assert effective_role(person.user, project_a) == Role.ADMIN


def test_reader_key_cannot_do_an_editors_work_even_when_its_user_can(owner):
    issued = create_api_key(
        user=owner.user,
        tenant=owner.project.tenant,
        project=owner.project,
        name="ro",
        role=Role.READER,
        actor=None,
    )
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert client.get("/v1/project").status_code == 200
    response = client.patch("/v1/project", {"name": "renamed"}, format="json")
    assert response.status_code == 403
    assert "admin" in response.json()["errors"][0]["detail"]


def test_reader_cannot_change_the_project_but_owner_can(owner, reader):
    assert reader.client().patch("/v1/project", {"name": "x"}, format="json").status_code == 403
    response = owner.client().patch("/v1/project", {"name": "Support desk"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "Support desk"


def test_removing_a_membership_removes_access(reader):
    from tenants.models import Membership
    from tenants.services import remove_membership

    remove_membership(Membership.objects.get(user=reader.user), actor=None)
    assert reader.client().get("/v1/project").status_code == 404


def test_tenant_wide_key_names_its_project_in_a_header(project_a, persona_factory):
    from rest_framework.test import APIClient

    from tenants.services import ensure_project

    second = ensure_project("acme", "billing", actor=None)
    person = persona_factory("lead@acme.test", project_a, "admin", tenant_role=True)
    issued = create_api_key(
        user=person.user,
        tenant=project_a.tenant,
        project=None,
        name="wide",
        role=Role.READER,
        actor=None,
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    missing = client.get("/v1/project")
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["attr"] == "X-Engramia-Project"
    response = client.get("/v1/project", HTTP_X_ENGRAMIA_PROJECT="billing")
    assert response.status_code == 200 and response.json()["slug"] == second.slug
    assert client.get("/v1/project", HTTP_X_ENGRAMIA_PROJECT="nope").status_code == 404
