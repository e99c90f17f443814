"""Session ids in URLs: any text up to 255 characters, '/' included, percent-encoded."""

from __future__ import annotations

import pytest

from conversations.models import SessionItem
from tests.conversations.conftest import session_url, user

ODD_IDS = [
    "support/ticket-42",
    "a/b/c/",
    "/leading",
    "čaj ☕ 会話",
    "50% off?#frag&x=1",
    "chat/items",
    "chat/pop",
    "x/items/pop",
    "items",
    "..",
    ".",
    "x" * 255,
]


@pytest.mark.parametrize("session_id", ODD_IDS)
def test_any_id_round_trips_through_every_endpoint(editor, session_id):
    client = editor.client()
    added = client.post(
        session_url(session_id, "items"), {"items": [user("one"), user("two")]}, format="json"
    )
    assert added.status_code == 201 and added.json()["session_id"] == session_id
    assert SessionItem.objects.get(position=1).session_id == session_id

    read = client.get(session_url(session_id, "items"))
    assert read.json() == {
        "session_id": session_id,
        "items": [user("one"), user("two")],
        "next_before": None,
    }
    popped = client.post(session_url(session_id, "pop")).json()
    assert popped == {"session_id": session_id, "item": user("two")}
    cleared = client.delete(session_url(session_id)).json()
    assert cleared == {"session_id": session_id, "removed": 1}
    assert not SessionItem.objects.exists()


@pytest.mark.parametrize("suffix", ["items", "pop"])
def test_clearing_an_id_that_ends_like_a_route_clears_that_id_only(
    editor, project_a, seed_session, suffix
):
    # `chat%2Fitems` reaches Django as `chat/items`, which the items route matches with id `chat`.
    seed_session(project_a, "chat", [user("keep me")])
    seed_session(project_a, f"chat/{suffix}", [user("clear me")])
    response = editor.client().delete(session_url(f"chat/{suffix}"))
    assert response.json() == {"session_id": f"chat/{suffix}", "removed": 1}
    assert list(SessionItem.objects.values_list("session_id", flat=True)) == ["chat"]


def test_ids_are_trimmed_as_in_local_mode(editor):
    client = editor.client()
    client.post(session_url("  chat-1 ", "items"), {"items": [user("hi")]}, format="json")
    assert client.get(session_url("chat-1", "items")).json()["items"] == [user("hi")]


@pytest.mark.parametrize(
    "session_id, code",
    [
        ("", "blank"),
        ("   ", "blank"),
        ("x" * 256, "max_length"),
        ("a\x00b", "null_characters_not_allowed"),
    ],
    ids=["empty", "blank", "too long", "NUL"],
)
def test_bad_ids_are_a_400_naming_session_id(editor, reader, session_id, code):
    client = editor.client()
    responses = [
        reader.client().get(session_url(session_id, "items")),
        client.post(session_url(session_id, "items"), {"items": [user("x")]}, format="json"),
        client.post(session_url(session_id, "pop")),
    ]
    if session_id:  # `/v1/sessions/` names no session, so there is no route to clear
        responses.append(client.delete(session_url(session_id)))
    for response in responses:
        assert response.status_code == 400, response.content
        assert response.json()["errors"] == [
            {"code": code, "detail": response.json()["errors"][0]["detail"], "attr": "session_id"}
        ]
    assert not SessionItem.objects.exists()


def test_the_bare_sessions_path_is_no_endpoint(editor):
    for method in ("GET", "POST", "DELETE"):
        response = editor.client().generic(method, "/v1/sessions/")
        assert response.status_code == 404
        assert editor.client().generic(method, "/v1/sessions").status_code == 404
