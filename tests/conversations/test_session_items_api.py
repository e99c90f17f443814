"""GET and POST /v1/sessions/<id>/items: order, limit, roles, validation, isolation."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import SessionItem
from tests.conversations.conftest import assistant, session_url, user


def _errors(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["type"] == "validation_error"
    return body["errors"]


def test_editor_appends_items_and_reads_them_back_in_order(editor):
    client = editor.client()
    first = client.post(
        session_url("chat-1", "items"), {"items": [user("hi"), assistant("hello")]}, format="json"
    )
    assert first.status_code == 201
    assert first.json() == {"session_id": "chat-1", "added": 2}
    tool_output = {"type": "function_call_output", "call_id": "c1", "output": "3"}
    client.post(
        session_url("chat-1", "items"), {"items": [user("count"), tool_output]}, format="json"
    )

    response = client.get(session_url("chat-1", "items"))
    assert response.status_code == 200
    assert response.json() == {
        "session_id": "chat-1",
        "items": [user("hi"), assistant("hello"), user("count"), tool_output],
        "next_before": None,
    }
    positions = SessionItem.objects.filter(session_id="chat-1").values_list("position", flat=True)
    assert sorted(positions) == [1, 2, 3, 4]


def test_an_unknown_session_is_empty_not_missing(reader):
    response = reader.client().get(session_url("never-used", "items"))
    assert response.status_code == 200
    assert response.json() == {"session_id": "never-used", "items": [], "next_before": None}


def test_limit_gives_the_latest_items_still_in_order(reader, project_a, seed_session):
    seed_session(project_a, "chat-1", [user(str(n)) for n in range(5)])
    client = reader.client()

    def read(**query: Any) -> list[Any]:
        response = client.get(session_url("chat-1", "items"), query)
        assert response.status_code == 200, response.content
        return response.json()["items"]

    assert read() == [user(str(n)) for n in range(5)]
    assert read(limit=2) == [user("3"), user("4")]
    assert read(limit=1) == [user("4")]
    assert read(limit=0) == []
    assert read(limit=50) == read()
    assert read(limit=1000) == read()


@pytest.mark.parametrize("limit", ["-1", "abc", "1.5", "", "1001", "99999999999999999999"])
def test_a_bad_limit_is_a_400_naming_limit(reader, limit):
    response = reader.client().get(session_url("chat-1", "items"), {"limit": limit})
    assert {error["attr"] for error in _errors(response)} == {"limit"}


def test_unknown_query_parameters_are_refused_by_name(reader):
    response = reader.client().get(session_url("chat-1", "items"), {"lmit": "3"})
    assert _errors(response) == [
        {"code": "unknown_field", "detail": "Unknown field.", "attr": "lmit"}
    ]


def test_reader_reads_but_cannot_append(reader, project_a, seed_session):
    seed_session(project_a, "chat-1", [user("hi")])
    client = reader.client()
    assert client.get(session_url("chat-1", "items")).json()["items"] == [user("hi")]
    response = client.post(session_url("chat-1", "items"), {"items": [user("x")]}, format="json")
    assert response.status_code == 403
    assert response.json()["type"] == "client_error"
    assert SessionItem.objects.filter(session_id="chat-1").count() == 1


DEEP: dict[str, Any] = {"leaf": 1}
for _ in range(150):
    DEEP = {"next": DEEP}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"items": None},
        {"items": user("not a list")},
        {"items": "text"},
        {"items": []},
        {"items": [user("fine"), "text"]},
        {"items": [1]},
        {"items": [[user("nested list")]]},
        {"items": [user("x")] * 1001},
        {"items": [user("nul \u0000 inside")]},
        {"items": [{"role\u0000": "user"}]},
        {"items": [DEEP]},
    ],
    ids=[
        "missing",
        "null",
        "object",
        "string",
        "empty",
        "a string item",
        "a number item",
        "a list item",
        "too many",
        "NUL in a value",
        "NUL in a key",
        "too deep",
    ],
)
def test_bad_items_are_a_400_naming_items_and_store_nothing(editor, body):
    response = editor.client().post(session_url("chat-1", "items"), body, format="json")
    # Text and depth problems name the exact place inside items (e.g. items.0.content).
    assert {error["attr"].split(".")[0] for error in _errors(response)} == {"items"}
    assert not SessionItem.objects.exists()


def test_numbers_jsonb_cannot_hold_are_a_400(editor):
    response = editor.client().generic(
        "POST",
        session_url("chat-1", "items"),
        '{"items": [{"role": "user", "content": 1e400}]}',
        content_type="application/json",
    )
    assert {error["attr"] for error in _errors(response)} == {"items"}


def test_malformed_bodies_are_400s_never_500s(editor):
    client = editor.client()
    url = session_url("chat-1", "items")
    for raw in ("{not json", "[" * 50_000 + "]" * 50_000, '{"items": [NaN]}', "[]"):
        response = client.generic("POST", url, raw, content_type="application/json")
        assert response.status_code == 400, (raw[:20], response.content[:200])
    unknown = client.post(url, {"items": [user("x")], "extra": 1}, format="json")
    assert {error["attr"] for error in _errors(unknown)} == {"extra"}
    form = client.post(url, {"items": "x"})  # multipart
    assert form.status_code == 415
    assert not SessionItem.objects.exists()


def test_exactly_the_cap_is_accepted(editor):
    response = editor.client().post(
        session_url("bulk", "items"), {"items": [user(str(n)) for n in range(1000)]}, format="json"
    )
    assert response.status_code == 201 and response.json()["added"] == 1000


def test_items_are_stored_as_sent(editor):
    item = {
        "type": "message",
        "role": "assistant",
        "content": [
            {"type": "output_text", "text": "Příliš žluťoučký kůň ☕ 会話", "annotations": []}
        ],
        "status": "completed",
        "id": "msg_1",
        "extra": {"n": 1.5, "flag": False, "none": None, "big": 2**62},
    }
    client = editor.client()
    client.post(session_url("chat-1", "items"), {"items": [item]}, format="json")
    assert client.get(session_url("chat-1", "items")).json()["items"] == [item]
    assert SessionItem.objects.get().item == item


def test_sessions_are_isolated_by_id_and_by_project(editor, outsider, project_a, project_b):
    mine, theirs = editor.client(), outsider.client()
    mine.post(session_url("chat-1", "items"), {"items": [user("acme one")]}, format="json")
    mine.post(session_url("chat-2", "items"), {"items": [user("acme two")]}, format="json")
    theirs.post(session_url("chat-1", "items"), {"items": [user("globex one")]}, format="json")

    assert mine.get(session_url("chat-1", "items")).json()["items"] == [user("acme one")]
    assert mine.get(session_url("chat-2", "items")).json()["items"] == [user("acme two")]
    assert theirs.get(session_url("chat-1", "items")).json()["items"] == [user("globex one")]
    assert theirs.get(session_url("chat-2", "items")).json()["items"] == []
    assert SessionItem.objects.filter(project=project_a).count() == 2
    assert SessionItem.objects.filter(project=project_b).count() == 1


def test_another_tenants_project_named_in_the_header_is_a_404(editor, outsider):
    response = editor.client().get(
        session_url("chat-1", "items"), HTTP_X_ENGRAMIA_PROJECT=outsider.project.slug
    )
    assert response.status_code == 404


def test_reading_costs_a_fixed_number_of_queries(
    reader, project_a, seed_session, django_assert_num_queries
):
    seed_session(project_a, "chat-1", [user(str(n)) for n in range(3)])
    client = reader.client()
    for _ in range(2):  # the first stamps the key's last use, the second keeps the key's row
        client.get(session_url("chat-1", "items"))
    # the session's items (the key with its project and roles is kept: tenants.keyscope)
    with django_assert_num_queries(1):
        few = client.get(session_url("chat-1", "items"))
    seed_session(project_a, "chat-1", [user(str(n)) for n in range(3, 40)])
    with django_assert_num_queries(1):
        many = client.get(session_url("chat-1", "items"), {"limit": 30})
    assert len(few.json()["items"]) == 3 and len(many.json()["items"]) == 30
