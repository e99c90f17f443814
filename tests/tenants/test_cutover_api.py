"""PATCH /v1/project read_path is the audited cut-over."""

from tenants.models import AuditEntry, Project


def test_read_path_change_needs_a_reason_and_is_audited_with_actor(owner):
    client = owner.client()
    refused = client.patch("/v1/project", {"read_path": "dual"}, format="json")
    assert refused.status_code == 400 and refused.json()["errors"][0]["attr"] == "reason"
    response = client.patch(
        "/v1/project",
        {"read_path": "dual", "reason": "start dual-write"},
        format="json",
        HTTP_X_REQUEST_ID="cutover-1",
    )
    assert response.status_code == 200 and response.json()["read_path"] == "dual"
    assert Project.objects.get(pk=owner.project.pk).read_path == "dual"
    entry = AuditEntry.objects.filter(
        project_id=owner.project.pk, changes__has_key="read_path"
    ).latest("timestamp")
    assert entry.changes["read_path"] == ["engramia", "dual"]
    assert entry.actor == owner.user and entry.api_key_name == owner.key.name
    assert entry.cid == "cutover-1" and entry.tenant_id == owner.project.tenant_id
    assert entry.additional_data["reason"] == "start dual-write"
    audit = client.get("/v1/audit", {"object_type": "project"}).json()["results"]
    assert audit[0]["actor"] == owner.user.email and audit[0]["reason"] == "start dual-write"


def test_embedding_model_must_name_a_usable_model(owner):
    # A usable one starts a re-embedding job: tests/memory/test_reembed.py.
    response = owner.client().patch("/v1/project", {"embedding_model": "openai:x"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "embedding_model"
