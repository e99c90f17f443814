"""Sessions are read a page at a time and hold a bounded number of items."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from conversations.models import SessionItem
from tests.conversations.conftest import session_url, user


def _texts(items: list[Any]) -> list[str]:
    return [item["content"] for item in items]


def test_reading_without_a_limit_gives_the_latest_page_and_a_cursor(
    reader, project_a, seed_session
):
    seed_session(project_a, "long", [user(str(n)) for n in range(250)])
    client = reader.client()
    first = client.get(session_url("long", "items"))
    assert first.status_code == 200
    body = first.json()
    assert _texts(body["items"]) == [str(n) for n in range(150, 250)]  # 100 by default
    older = client.get(session_url("long", "items"), {"before": body["next_before"]}).json()
    assert _texts(older["items"]) == [str(n) for n in range(50, 150)]
    oldest = client.get(
        session_url("long", "items"), {"before": older["next_before"], "limit": 1000}
    ).json()
    assert _texts(oldest["items"]) == [str(n) for n in range(50)]
    assert oldest["next_before"] is None


def test_a_page_holds_at_most_1000_items(reader, project_a, seed_session):
    seed_session(project_a, "long", [user(str(n)) for n in range(1001)])
    client = reader.client()
    page = client.get(session_url("long", "items"), {"limit": 1000}).json()
    assert len(page["items"]) == 1000 and page["next_before"] is not None
    refused = client.get(session_url("long", "items"), {"limit": 1001})
    assert refused.status_code == 400
    (error,) = refused.json()["errors"]
    assert error["attr"] == "limit" and error["code"] == "max_value"


@pytest.mark.parametrize("before", ["0", "-3", "x", ""])
def test_a_bad_cursor_is_a_400_naming_before(reader, before):
    response = reader.client().get(session_url("chat", "items"), {"before": before})
    assert response.status_code == 400
    assert {error["attr"] for error in response.json()["errors"]} == {"before"}


@override_settings(ENGRAMIA_SESSION_MAX_ITEMS=5)
def test_a_full_session_refuses_more_items_with_a_409_naming_items(editor):
    client = editor.client()
    url = session_url("chat", "items")
    assert client.post(url, {"items": [user("a")] * 3}, format="json").status_code == 201
    refused = client.post(url, {"items": [user("b")] * 3}, format="json")
    assert refused.status_code == 409
    body = refused.json()
    assert body["type"] == "client_error"
    (error,) = body["errors"]
    assert error["attr"] == "items" and error["code"] == "session_full"
    assert "5" in error["detail"] and "ENGRAMIA_SESSION_MAX_ITEMS" in error["detail"]
    assert SessionItem.objects.count() == 3  # nothing of the refused call
    assert client.post(url, {"items": [user("b")] * 2}, format="json").status_code == 201
    assert client.post(url, {"items": [user("c")]}, format="json").status_code == 409
    assert client.post(session_url("chat", "pop"), {}, format="json").status_code == 200
    assert client.post(url, {"items": [user("c")]}, format="json").status_code == 201
    # another session of the project has its own allowance
    assert client.post(session_url("other", "items"), {"items": [user("x")]}, format="json")
    assert SessionItem.objects.filter(session_id="other").count() == 1


@pytest.mark.django_db(transaction=True)  # local mode writes from its own thread
@override_settings(ENGRAMIA_SESSION_MAX_ITEMS=5)
def test_local_mode_refuses_a_full_session_the_same_way(editor):
    import asyncio

    from engramia import Memory
    from engramia.errors import EngramiaConflictError
    from engramia.sdk.openai_agents import EngramiaSession

    session = EngramiaSession("chat", Memory(editor.project.path))

    async def scenario() -> Any:
        await session.add_items([user("a")] * 5)
        with pytest.raises(EngramiaConflictError) as caught:
            await session.add_items([user("b")])
        return caught.value

    error = asyncio.run(scenario())
    assert error.status == 409
    assert [(e["attr"], e["code"]) for e in error.errors] == [("items", "session_full")]
    assert SessionItem.objects.count() == 5
