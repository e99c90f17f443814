"""API key lifecycle: create, use, rotate (the old secret dies at once), revoke, expire."""

from datetime import timedelta

from django.utils import timezone
from rest_framework.test import APIClient

from tenants.models import ApiKey
from tenants.services import hash_api_key


def _client(secret):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_owner_creates_a_key_whose_secret_is_shown_once_and_stored_hashed(owner):
    response = owner.client().post("/v1/keys", {"name": "ci", "role": "reader"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["api_key"].startswith("eng_") and body["role"] == "reader"
    assert body["project"] == "acme/support"
    stored = ApiKey.objects.get(pk=body["id"])
    assert stored.key_hash == hash_api_key(body["api_key"])
    assert body["api_key"] not in str(stored.__dict__.values())
    listed = owner.client().get("/v1/keys").json()["results"]
    assert any(row["id"] == body["id"] for row in listed)
    assert all("api_key" not in row for row in listed)
    assert _client(body["api_key"]).get("/v1/project").status_code == 200


def test_rotation_kills_the_old_secret_immediately(owner):
    created = owner.client().post("/v1/keys", {"name": "svc", "role": "editor"}, format="json")
    old_secret = created.json()["api_key"]
    rotated = owner.client().post(f"/v1/keys/{created.json()['id']}/rotate")
    assert rotated.status_code == 200
    new_secret = rotated.json()["api_key"]
    assert new_secret != old_secret
    assert _client(old_secret).get("/v1/project").status_code == 401
    assert _client(new_secret).get("/v1/project").status_code == 200


def test_revoked_key_is_refused(owner):
    created = owner.client().post("/v1/keys", {"name": "tmp", "role": "reader"}, format="json")
    secret = created.json()["api_key"]
    assert owner.client().delete(f"/v1/keys/{created.json()['id']}").status_code == 204
    assert _client(secret).get("/v1/project").status_code == 401
    assert ApiKey.objects.get(pk=created.json()["id"]).revoked_at is not None


def test_expired_key_is_refused(owner):
    ApiKey.objects.filter(pk=owner.key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = owner.client().get("/v1/project")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_key_cannot_grant_more_than_its_own_role(editor, owner):
    # an editor may not even manage keys; an admin-capped key cannot mint an owner key
    assert (
        editor.client().post("/v1/keys", {"name": "x", "role": "reader"}, format="json").status_code
        == 403
    )
    admin_key = (
        owner.client().post("/v1/keys", {"name": "adm", "role": "admin"}, format="json").json()
    )
    response = _client(admin_key["api_key"]).post(
        "/v1/keys", {"name": "own", "role": "owner"}, format="json"
    )
    assert response.status_code == 403


def test_last_used_is_recorded_without_an_audit_entry(owner):
    from tenants.models import AuditEntry

    before = AuditEntry.objects.count()
    owner.client().get("/v1/project")
    owner.key.refresh_from_db()
    assert owner.key.last_used_at is not None
    assert AuditEntry.objects.count() == before


def test_key_creation_validates_input(owner):
    client = owner.client()
    response = client.post("/v1/keys", {"name": "x", "role": "emperor"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "role"
    past = (timezone.now() - timedelta(days=1)).isoformat()
    response = client.post(
        "/v1/keys", {"name": "x", "role": "reader", "expires_at": past}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "expires_at"
