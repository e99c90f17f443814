"""Audit entries carry actor, tenant, project and request id — from API calls and CLI commands."""

import json

from django.core.management import call_command

from tenants.models import ApiKey, AuditEntry


def test_api_key_creation_is_audited_with_the_calling_key_and_request_id(owner):
    response = owner.client().post(
        "/v1/keys", {"name": "audited", "role": "reader"}, format="json", HTTP_X_REQUEST_ID="req-42"
    )
    key_id = response.json()["id"]
    entry = AuditEntry.objects.get(content_type__model="apikey", object_pk=str(key_id))
    assert entry.action == AuditEntry.Action.CREATE
    assert entry.actor == owner.user and entry.api_key_name == owner.key.name
    assert entry.tenant_id == owner.project.tenant_id and entry.project_id == owner.project.pk
    assert entry.cid == "req-42"
    assert "key_hash" not in (entry.changes or {})


def test_audit_endpoint_filters_and_hides_other_tenants(owner, outsider):
    owner.client().post("/v1/keys", {"name": "a1", "role": "reader"}, format="json")
    outsider.client().post("/v1/keys", {"name": "b1", "role": "reader"}, format="json")
    rows = (
        owner.client()
        .get("/v1/audit", {"object_type": "apikey", "action": "create"})
        .json()["results"]
    )
    names = {row["object_repr"].split(" (")[0] for row in rows}
    assert "a1" in names and "b1" not in names
    assert all(row["action"] == "create" for row in rows)
    by_actor = owner.client().get("/v1/audit", {"actor": owner.user.email}).json()["results"]
    assert by_actor and all(row["actor"] == owner.user.email for row in by_actor)
    bad = owner.client().get("/v1/audit", {"since": "yesterday", "action": "explode"})
    assert bad.status_code == 400
    assert {error["attr"] for error in bad.json()["errors"]} == {"since", "action"}


def test_reader_cannot_read_the_audit_log(reader):
    assert reader.client().get("/v1/audit").status_code == 403


def test_cli_commands_are_audited_with_the_operator(db, capsys, monkeypatch):
    monkeypatch.delenv("ENGRAMIA_ACTOR", raising=False)
    call_command(
        "bootstrap",
        "--tenant",
        "initech",
        "--project",
        "tps",
        "--email",
        "bill@initech.test",
        "--json",
    )
    payload = json.loads(capsys.readouterr().out)
    key = ApiKey.objects.get(prefix=payload["api_key"].split("_")[1])
    entry = AuditEntry.objects.get(content_type__model="apikey", object_pk=str(key.pk))
    assert entry.actor_email.startswith("cli:")
    assert entry.tenant_id == key.tenant_id and entry.cid


def test_cli_actor_can_be_a_named_user(owner, capsys, monkeypatch):
    monkeypatch.setenv("ENGRAMIA_ACTOR", owner.user.email)
    call_command(
        "create_api_key",
        "--project",
        "acme/support",
        "--role",
        "reader",
        "--name",
        "robot",
        "--json",
    )
    payload = json.loads(capsys.readouterr().out)
    entry = AuditEntry.objects.get(content_type__model="apikey", object_pk=str(payload["id"]))
    assert entry.actor == owner.user
