"""POST /v1/sessions/<id>/pop and DELETE /v1/sessions/<id>: results, roles, audit."""

from __future__ import annotations

from conversations.models import SessionItem
from tenants.models import AuditEntry
from tests.conversations.conftest import assistant, session_url, user


def test_pop_removes_and_returns_the_latest_item_then_null(editor, project_a, seed_session):
    seed_session(project_a, "chat-1", [user("hi"), assistant("hello")])
    client = editor.client()
    popped = [client.post(session_url("chat-1", "pop")) for _ in range(3)]
    assert [response.status_code for response in popped] == [200, 200, 200]
    assert [response.json() for response in popped] == [
        {"session_id": "chat-1", "item": assistant("hello")},
        {"session_id": "chat-1", "item": user("hi")},
        {"session_id": "chat-1", "item": None},
    ]
    assert client.get(session_url("chat-1", "items")).json()["items"] == []


def test_pop_accepts_an_empty_object_and_refuses_parameters(editor, project_a, seed_session):
    seed_session(project_a, "chat-1", [user("one"), user("two")])
    client = editor.client()
    assert client.post(session_url("chat-1", "pop"), {}, format="json").json()["item"] == user(
        "two"
    )
    refused = client.post(session_url("chat-1", "pop"), {"index": 0}, format="json")
    assert refused.status_code == 400 and refused.json()["type"] == "validation_error"
    assert SessionItem.objects.filter(session_id="chat-1").count() == 1


def test_a_pop_is_audited_as_the_keys_user_without_the_content(editor, project_a, seed_session):
    seed_session(project_a, "chat-1", [user("secret question")])
    editor.client().post(session_url("chat-1", "pop"), HTTP_X_REQUEST_ID="req-pop")
    entry = AuditEntry.objects.get(content_type__model="sessionitem")
    assert entry.action == AuditEntry.Action.DELETE and entry.object_repr == "session chat-1 #1"
    assert entry.actor == editor.user and entry.cid == "req-pop"
    assert "secret" not in str(entry.changes)


def test_editor_clears_a_session_and_only_that_session(editor, project_a, seed_session):
    seed_session(project_a, "chat-1", [user("a"), user("b"), user("c")])
    seed_session(project_a, "chat-2", [user("kept")])
    client = editor.client()
    response = client.delete(session_url("chat-1"))
    assert response.status_code == 200
    assert response.json() == {"session_id": "chat-1", "removed": 3}
    assert client.get(session_url("chat-1", "items")).json()["items"] == []
    assert client.get(session_url("chat-2", "items")).json()["items"] == [user("kept")]
    again = client.delete(session_url("chat-1"))
    assert again.json() == {"session_id": "chat-1", "removed": 0}


def test_a_clear_is_one_audit_entry_naming_the_session_and_the_keys_user(
    editor, owner, project_a, seed_session
):
    seed_session(project_a, "support-ticket-42", [user(f"message {n}") for n in range(5)])
    editor.client().delete(session_url("support-ticket-42"), HTTP_X_REQUEST_ID="req-clear")

    entry = AuditEntry.objects.get(content_type__model="sessionitem")
    assert entry.action == AuditEntry.Action.DELETE
    assert entry.object_repr == "session support-ticket-42"
    assert entry.additional_data["cleared_items"] == 5
    assert entry.actor == editor.user and entry.actor_email == editor.user.email
    assert entry.api_key_name == editor.key.name and entry.cid == "req-clear"
    assert entry.project_id == project_a.pk and entry.tenant_id == project_a.tenant_id

    rows = owner.client().get("/v1/audit", {"object_type": "sessionitem"}).json()["results"]
    assert [(row["action"], row["actor"], row["request_id"]) for row in rows] == [
        ("delete", editor.user.email, "req-clear")
    ]


def test_reader_can_neither_pop_nor_clear(reader, project_a, seed_session):
    seed_session(project_a, "chat-1", [user("hi")])
    client = reader.client()
    assert client.post(session_url("chat-1", "pop")).status_code == 403
    assert client.delete(session_url("chat-1")).status_code == 403
    assert SessionItem.objects.filter(session_id="chat-1").count() == 1
    assert not AuditEntry.objects.filter(content_type__model="sessionitem").exists()


def test_other_methods_are_405_in_the_error_format(editor):
    client = editor.client()
    for method, url in (
        ("GET", session_url("chat-1")),
        ("GET", session_url("chat-1", "pop")),
        ("PUT", session_url("chat-1", "items")),
        ("PATCH", session_url("chat-1")),
    ):
        response = client.generic(method, url, "{}", content_type="application/json")
        assert response.status_code == 405, (method, url)
        assert response.json()["errors"][0]["code"] == "method_not_allowed"
