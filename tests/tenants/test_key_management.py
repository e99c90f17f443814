"""Rotating and revoking keys follows the rule of creating them: never above the caller's role,
and another user's key only for a caller who outranks its owner there."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tenants.choices import Role
from tenants.models import ApiKey, AuditEntry
from tenants.services import create_api_key, set_membership
from tests.conftest import Persona, make_persona


def _client(secret: str, project: str = "") -> APIClient:
    client = APIClient()
    headers = {"HTTP_X_ENGRAMIA_PROJECT": project} if project else {}
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}", **headers)
    return client


def _tenant_wide(user: Any, tenant: Any, role: str, name: str) -> tuple[ApiKey, str]:
    issued = create_api_key(
        user=user, tenant=tenant, project=None, name=name, role=role, actor=None
    )
    return issued.key, issued.secret


@pytest.fixture
def admin(project_a: Any) -> Persona:
    return make_persona("admin@acme.test", project_a, "admin")


def _unchanged(key: ApiKey, secret: str) -> None:
    stored = ApiKey.objects.get(pk=key.pk)
    assert (stored.prefix, stored.key_hash, stored.revoked_at) == (key.prefix, key.key_hash, None)
    assert _client(secret, "support").get("/v1/project").status_code == 200


def test_an_admin_key_cannot_rotate_or_revoke_the_owners_key(admin, owner):
    client = admin.client()
    listed = client.get("/v1/keys").json()["results"]
    assert owner.key.pk in [row["id"] for row in listed]  # visible, yet not to be touched

    rotated = client.post(f"/v1/keys/{owner.key.pk}/rotate")
    assert rotated.status_code == 403
    assert rotated.json()["type"] == "client_error"
    assert "api_key" not in rotated.json()
    assert client.delete(f"/v1/keys/{owner.key.pk}").status_code == 403
    _unchanged(owner.key, owner.secret)


def test_an_admin_cannot_touch_another_admins_keys(admin, project_a):
    other = make_persona("other-admin@acme.test", project_a, "admin")
    spare = create_api_key(
        user=other.user,
        tenant=project_a.tenant,
        project=project_a,
        name="spare",
        role="reader",
        actor=None,
    )
    for target in (other.key, spare.key):
        assert admin.client().post(f"/v1/keys/{target.pk}/rotate").status_code == 403
        assert admin.client().delete(f"/v1/keys/{target.pk}").status_code == 403
    _unchanged(spare.key, spare.secret)


def test_a_tenant_admin_cannot_rotate_a_tenant_wide_owner_key(owner, project_a):
    tenant = project_a.tenant
    boss_key, boss_secret = _tenant_wide(owner.user, tenant, "owner", "boss-wide")
    deputy = make_persona("deputy@acme.test", project_a, "admin", tenant_role=True)
    _, deputy_secret = _tenant_wide(deputy.user, tenant, "admin", "deputy-wide")
    client = _client(deputy_secret, "support")
    listed = client.get("/v1/keys").json()["results"]
    assert boss_key.pk in [row["id"] for row in listed]

    assert client.post(f"/v1/keys/{boss_key.pk}/rotate").status_code == 403
    assert client.delete(f"/v1/keys/{boss_key.pk}").status_code == 403
    _unchanged(boss_key, boss_secret)


def test_an_owner_still_rotates_and_revokes_lower_keys(owner, admin, reader):
    client = owner.client()
    rotated = client.post(f"/v1/keys/{admin.key.pk}/rotate")
    assert rotated.status_code == 200
    assert _client(rotated.json()["api_key"]).get("/v1/keys").status_code == 200
    assert _client(admin.secret).get("/v1/project").status_code == 401
    assert client.delete(f"/v1/keys/{reader.key.pk}").status_code == 204
    assert ApiKey.objects.get(pk=reader.key.pk).revoked_at is not None


def test_an_admin_manages_a_readers_key(admin, reader):
    assert admin.client().post(f"/v1/keys/{reader.key.pk}/rotate").status_code == 200
    assert admin.client().delete(f"/v1/keys/{reader.key.pk}").status_code == 204


def test_a_user_rotates_their_own_keys_up_to_their_own_role(admin, project_a):
    spare = admin.client().post("/v1/keys", {"name": "ci", "role": "editor"}, format="json")
    assert admin.client().post(f"/v1/keys/{spare.json()['id']}/rotate").status_code == 200
    rotated = admin.client().post(f"/v1/keys/{admin.key.pk}/rotate")
    assert rotated.status_code == 200

    # A key minted while its user was owner stays above them after a demotion.
    set_membership(user=admin.user, scope=project_a, role=Role.OWNER, actor=None)
    old_owner_key = create_api_key(
        user=admin.user,
        tenant=project_a.tenant,
        project=project_a,
        name="was-owner",
        role="owner",
        actor=None,
    )
    set_membership(user=admin.user, scope=project_a, role=Role.ADMIN, actor=None)
    client = _client(rotated.json()["api_key"])
    assert client.post(f"/v1/keys/{old_owner_key.key.pk}/rotate").status_code == 403
    _unchanged(old_owner_key.key, old_owner_key.secret)
    assert client.delete(f"/v1/keys/{old_owner_key.key.pk}").status_code == 403


def test_a_project_key_never_reaches_a_tenant_wide_key(owner, project_a):
    boss_key, _ = _tenant_wide(owner.user, project_a.tenant, "admin", "wide")
    assert owner.client().post(f"/v1/keys/{boss_key.pk}/rotate").status_code == 404
    assert owner.client().delete(f"/v1/keys/{boss_key.pk}").status_code == 404


def test_a_rotation_is_audited_under_the_caller(owner, admin):
    before = set(AuditEntry.objects.values_list("pk", flat=True))
    assert owner.client().post(f"/v1/keys/{admin.key.pk}/rotate").status_code == 200
    entries = AuditEntry.objects.exclude(pk__in=before).filter(object_pk=str(admin.key.pk))
    (entry,) = entries
    assert entry.actor == owner.user and entry.actor_email == owner.user.email
    assert entry.api_key_name == owner.key.name
    assert "key_hash" not in entry.changes and "prefix" in entry.changes


def test_an_admin_key_cannot_mint_an_owner_key_anywhere(admin, owner, project_a):
    from tenants.services import ensure_project

    ensure_project("acme", "billing", actor=None)
    deputy = make_persona("deputy@acme.test", project_a, "admin", tenant_role=True)
    _, deputy_secret = _tenant_wide(deputy.user, project_a.tenant, "admin", "deputy-wide")
    client = _client(deputy_secret, "support")
    for body in (
        {"name": "x", "role": "owner"},
        {"name": "x", "role": "owner", "project": "billing"},
        {"name": "x", "role": "owner", "project": None},
    ):
        response = client.post("/v1/keys", body, format="json")
        assert response.status_code == 403, (body, response.content)
        assert response.json()["errors"][0]["detail"]
    wide = client.post("/v1/keys", {"name": "x", "role": "admin", "project": None}, format="json")
    assert wide.status_code == 201 and wide.json()["project"] is None
    refused = admin.client().post(
        "/v1/keys", {"name": "x", "role": "reader", "project": None}, format="json"
    )
    assert refused.status_code == 403
    hidden = admin.client().post(
        "/v1/keys", {"name": "x", "role": "reader", "project": "billing"}, format="json"
    )
    assert hidden.status_code == 404


def test_the_shared_rule_refuses_the_same_things_to_a_signed_in_user(admin, owner, project_a):
    from tenants.services import KeyPermissionError, revoke_api_key, rotate_api_key

    with pytest.raises(KeyPermissionError):
        rotate_api_key(key=owner.key, actor=admin.user)
    with pytest.raises(KeyPermissionError):
        revoke_api_key(owner.key, actor=admin.user)
    _unchanged(owner.key, owner.secret)
    assert rotate_api_key(key=admin.key, actor=owner.user).secret
