"""Assistants, threads and messages in OpenAI's wire format: shapes, lists, errors, roles."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.assistants.openai.conftest import (
    BASE,
    WEATHER_TOOL,
    new_assistant,
    new_thread,
    run_jobs,
)


def test_an_assistant_is_created_read_changed_and_deleted_in_openais_shape(api):
    created = new_assistant(
        api, name="Support", instructions="Be kind.", tools=[WEATHER_TOOL], metadata={"team": "a"}
    )
    assert created["id"].startswith("asst_") and created["object"] == "assistant"
    assert isinstance(created["created_at"], int)
    assert (created["model"], created["instructions"], created["metadata"]) == (
        "gpt-test",
        "Be kind.",
        {"team": "a"},
    )
    assert created["tools"][0]["function"]["name"] == "get_weather"
    assert (created["temperature"], created["response_format"]) == (1.0, "auto")

    changed = api("post", f"/assistants/{created['id']}", {"name": "Helpdesk", "top_p": 0.5})
    assert changed.status_code == 200
    body = changed.json()
    assert (body["name"], body["top_p"], body["instructions"]) == ("Helpdesk", 0.5, "Be kind.")
    assert api("get", f"/assistants/{created['id']}").json()["name"] == "Helpdesk"

    gone = api("delete", f"/assistants/{created['id']}")
    assert gone.json() == {"id": created["id"], "object": "assistant.deleted", "deleted": True}
    assert api("get", f"/assistants/{created['id']}").status_code == 404


def test_every_assistant_field_round_trips(api):
    store = api("post", "/vector_stores", {"name": "docs"}).json()
    fields = {
        "name": "Support",
        "description": "Answers tickets",
        "instructions": "Be kind.",
        "tools": [WEATHER_TOOL, {"type": "file_search"}],
        "tool_resources": {"file_search": {"vector_store_ids": [store["id"]]}},
        "metadata": {"team": "a"},
        "temperature": 0.3,
        "top_p": 0.8,
        "response_format": {"type": "json_object"},
        "reasoning_effort": "medium",
    }
    created = new_assistant(api, **fields)
    read = api("get", f"/assistants/{created['id']}").json()
    for body in (created, read):
        assert {name: body[name] for name in fields if name != "tools"} == {
            name: value for name, value in fields.items() if name != "tools"
        }
        assert [tool["type"] for tool in body["tools"]] == ["function", "file_search"]
    changed = api(
        "post", f"/assistants/{created['id']}", {"description": None, "reasoning_effort": "high"}
    ).json()
    assert (changed["description"], changed["reasoning_effort"]) == (None, "high")


def test_an_assistants_function_tools_join_the_skill_registry(api, owner):
    from skills.models import Skill

    new_assistant(api, tools=[WEATHER_TOOL, {"type": "file_search"}])
    skill = Skill.objects.get(project=owner.project)
    assert (skill.name, skill.description) == ("get_weather", "The weather in a city")
    assert skill.parameters["required"] == ["city"]


def test_unknown_fields_are_ignored(api):
    body = new_assistant(api, invented_field=True, another={"x": 1})
    assert "invented_field" not in body


def test_a_thread_with_messages_is_listed_read_changed_and_deleted(api):
    from assistants.models import Message

    thread = new_thread(api, "First question", metadata={"user": "u1"})
    assert thread["id"].startswith("thread_") and thread["object"] == "thread"
    assert thread["metadata"] == {"user": "u1"} and thread["tool_resources"] == {}
    listed = api("get", "/threads").json()
    assert [item["id"] for item in listed["data"]] == [thread["id"]]
    assert api("get", f"/threads/{thread['id']}").json()["metadata"] == {"user": "u1"}
    changed = api("post", f"/threads/{thread['id']}", {"metadata": {"user": "u2"}}).json()
    assert changed["metadata"] == {"user": "u2"}
    gone = api("delete", f"/threads/{thread['id']}").json()
    assert gone == {"id": thread["id"], "object": "thread.deleted", "deleted": True}
    assert not Message.objects.exists()


def test_messages_take_a_string_or_text_parts(api):
    thread = new_thread(api)
    plain = api("post", f"/threads/{thread['id']}/messages", {"role": "user", "content": "hi"})
    parts = api(
        "post",
        f"/threads/{thread['id']}/messages",
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
    )
    assert plain.status_code == parts.status_code == 200
    message = plain.json()
    assert message["id"].startswith("msg_") and message["object"] == "thread.message"
    assert message["content"] == [{"type": "text", "text": {"value": "hi", "annotations": []}}]
    assert (message["thread_id"], message["status"], message["run_id"]) == (
        thread["id"],
        "completed",
        None,
    )
    assert [part["text"]["value"] for part in parts.json()["content"]] == ["a", "b"]
    path = f"/threads/{thread['id']}/messages/{message['id']}"
    assert api("post", path, {"metadata": {"k": "v"}}).json()["metadata"] == {"k": "v"}
    assert api("delete", path).json()["object"] == "thread.message.deleted"
    assert api("get", path).status_code == 404


def test_cursor_pages_go_both_ways_in_both_orders(api):
    thread = new_thread(api)
    ids = [
        api(
            "post", f"/threads/{thread['id']}/messages", {"role": "user", "content": str(n)}
        ).json()["id"]
        for n in range(5)
    ]
    path = f"/threads/{thread['id']}/messages"

    def page(**query):
        body = api("get", path, **{"QUERY_STRING": "&".join(f"{k}={v}" for k, v in query.items())})
        body = body.json()
        return [item["id"] for item in body["data"]], body["has_more"], body

    first, more, body = page(limit=2)
    assert first == [ids[4], ids[3]] and more
    assert (body["object"], body["first_id"], body["last_id"]) == ("list", ids[4], ids[3])
    assert page(limit=2, after=ids[3])[:2] == ([ids[2], ids[1]], True)
    assert page(limit=2, after=ids[1])[:2] == ([ids[0]], False)
    assert page(limit=2, before=ids[1])[:2] == ([ids[3], ids[2]], True)
    assert page(limit=2, order="asc")[:2] == ([ids[0], ids[1]], True)
    assert page(limit=3, order="asc", after=ids[1])[:2] == ([ids[2], ids[3], ids[4]], False)
    assert page(limit=2, order="asc", before=ids[4])[:2] == ([ids[2], ids[3]], True)
    assert page(after=ids[3], before=ids[0], order="desc")[:2] == ([ids[2], ids[1]], False)


def test_a_list_without_limit_is_a_page_of_twenty(api):
    thread = new_thread(api, *(f"message {n}" for n in range(21)))
    page = api("get", f"/threads/{thread['id']}/messages").json()
    assert (len(page["data"]), page["has_more"]) == (20, True)
    assert page["first_id"] == page["data"][0]["id"] and page["last_id"] == page["data"][-1]["id"]
    rest = api("get", f"/threads/{thread['id']}/messages", QUERY_STRING="limit=100").json()
    assert (len(rest["data"]), rest["has_more"]) == (21, False)


def test_errors_come_in_openais_shape_naming_the_field(api):
    missing = api("get", "/threads/thread_nope")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {
            "message": "No thread found with id 'thread_nope'.",
            "type": "invalid_request_error",
            "param": None,
            "code": "not_found",
        }
    }
    no_model = api("post", "/assistants", {"name": "x"}).json()["error"]
    assert (no_model["param"], no_model["code"]) == ("model", "required")
    too_many = api("post", "/threads", {"metadata": {str(n): "v" for n in range(17)}})
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "metadata"
    limit = api("get", "/threads", QUERY_STRING="limit=101").json()["error"]
    assert limit["param"] == "limit"
    cursor = api("get", "/threads", QUERY_STRING="after=thread_unknown").json()["error"]
    assert cursor["param"] == "after"
    nowhere = api("get", "/no-such-route")
    assert nowhere.status_code == 404 and nowhere.json()["error"]["code"] == "not_found"


def test_a_bad_key_is_a_401_in_openais_shape(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer eng_not_a_key")
    response = client.get(f"{BASE}/threads")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_readers_read_and_editors_write_and_run(api, reader, editor, llm):
    assistant = new_assistant(api)
    thread = new_thread(api, "hi")
    as_reader = reader.client()
    assert as_reader.get(f"{BASE}/threads/{thread['id']}").status_code == 200
    refused = as_reader.post(f"{BASE}/threads", {}, format="json")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_permissions"
    as_editor = editor.client()
    run = as_editor.post(
        f"{BASE}/threads/{thread['id']}/runs", {"assistant_id": assistant["id"]}, format="json"
    )
    assert run.status_code == 200
    run_jobs()
    assert as_editor.delete(f"{BASE}/threads/{thread['id']}").status_code == 200


def test_a_tenant_wide_key_names_its_project_in_openai_project(owner, project_a):
    from tenants.services import create_api_key, ensure_project

    ensure_project("acme", "billing", actor=None)
    wide = create_api_key(
        user=owner.user, tenant=project_a.tenant, project=None, name="w", role="editor", actor=None
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {wide.secret}")
    unnamed = client.get(f"{BASE}/threads")
    assert unnamed.status_code == 400 and unnamed.json()["error"]["param"] == "OpenAI-Project"
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {wide.secret}", HTTP_OPENAI_PROJECT="billing")
    thread = client.post(f"{BASE}/threads", {}, format="json").json()
    from assistants.models import Thread

    assert Thread.objects.get(public_id=thread["id"]).project.slug == "billing"
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {wide.secret}", HTTP_OPENAI_PROJECT="nope")
    assert client.get(f"{BASE}/threads").status_code == 404


def test_beta_header_v2_is_accepted_and_v1_refused(api):
    assert api("get", "/threads", HTTP_OPENAI_BETA="assistants=v2").status_code == 200
    refused = api("get", "/threads", HTTP_OPENAI_BETA="assistants=v1")
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "OpenAI-Beta"


@pytest.mark.parametrize(
    "body, param",
    [
        ({"model": "m", "tools": [{"type": "retrieval"}]}, "tools[0]"),
        ({"model": "m", "file_ids": ["file-1"]}, "file_ids"),
    ],
)
def test_assistants_v1_payloads_are_refused(api, body, param):
    refused = api("post", "/assistants", body)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["param"] == param and "v1" in error["message"]


def test_adding_a_message_during_a_run_is_openais_400(api, llm):
    assistant = new_assistant(api)
    thread = new_thread(api, "hi")
    run = api("post", f"/threads/{thread['id']}/runs", {"assistant_id": assistant["id"]}).json()
    refused = api("post", f"/threads/{thread['id']}/messages", {"role": "user", "content": "more"})
    assert refused.status_code == 400
    assert refused.json() == {
        "error": {
            "message": f"Can't add messages to {thread['id']} while a run {run['id']} is active.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    second = api("post", f"/threads/{thread['id']}/runs", {"assistant_id": assistant["id"]})
    assert second.status_code == 400 and run["id"] in second.json()["error"]["message"]
    run_jobs()
    again = api("post", f"/threads/{thread['id']}/messages", {"role": "user", "content": "more"})
    assert again.status_code == 200
