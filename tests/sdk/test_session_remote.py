"""EngramiaSession in remote mode: the Session protocol over /v1/sessions against a live server."""

from __future__ import annotations

import asyncio

import pytest
from agents import Agent, Runner
from openai.types.responses import ResponseOutputMessage, ResponseOutputText

from conversations.models import SessionItem
from engramia import Memory
from engramia.errors import EngramiaPermissionError, EngramiaValidationError
from engramia.sdk.openai_agents import EngramiaSession, engramia_instructions
from tenants.models import AuditEntry
from tests.sdk.fake_api import Answer, FakeEngramiaAPI

pytestmark = pytest.mark.django_db(transaction=True)


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


@pytest.fixture
def remote(live_server):
    """A remote Memory for a persona's key, its connections closed after the test."""
    opened: list[Memory] = []

    def connect(persona) -> Memory:
        memory = Memory(api_url=live_server.url, api_key=persona.secret)
        opened.append(memory)
        return memory

    yield connect
    for memory in opened:
        memory.close()


def run(memory: Memory, scenario):
    """Run a coroutine function, then close this loop's HTTP connections."""

    async def wrapped():
        try:
            return await scenario()
        finally:
            await memory.aclose()

    return asyncio.run(wrapped())


def test_the_session_protocol_over_the_api(remote, editor):
    memory = remote(editor)
    session = EngramiaSession("chat-1", memory)
    tool_output = {"type": "function_call_output", "call_id": "c1", "output": "3"}

    async def scenario():
        empty = await session.get_items()
        await session.add_items([user("hi"), assistant("hello")])
        await session.add_items([user("count"), tool_output])
        everything = await session.get_items()
        latest = await session.get_items(limit=2)
        negative = await session.get_items(limit=-1)  # SQLiteSession's reading: every item
        popped = await session.pop_item()
        after_pop = await session.get_items()
        await session.clear_session()
        return empty, everything, latest, negative, popped, after_pop, await session.pop_item()

    empty, everything, latest, negative, popped, after_pop, nothing = run(memory, scenario)
    assert empty == [] and nothing is None
    assert everything == [user("hi"), assistant("hello"), user("count"), tool_output]
    assert latest == everything[2:] and negative == everything
    assert popped == tool_output and after_pop == everything[:3]
    assert not SessionItem.objects.exists()
    cleared = AuditEntry.objects.get(object_repr="session chat-1")
    assert cleared.actor == editor.user and cleared.additional_data["cleared_items"] == 3
    assert cleared.project_id == editor.project.pk


@pytest.mark.parametrize(
    "session_id", ["support/ticket-42", "chat/items", "chat/pop", "..", ".", "čaj ☕ 50%?#"]
)
def test_any_session_id_round_trips(remote, editor, session_id):
    memory = remote(editor)
    session = EngramiaSession(session_id, memory)
    neighbour = EngramiaSession("chat", memory)

    async def scenario():
        await neighbour.add_items([user("neighbour")])
        await session.add_items([user("one"), user("two")])
        read = await session.get_items()
        await session.clear_session()
        return read, await session.get_items(), await neighbour.get_items()

    read, cleared, neighbour_items = run(memory, scenario)
    assert read == [user("one"), user("two")] and cleared == []
    assert neighbour_items == [user("neighbour")]
    assert list(SessionItem.objects.values_list("session_id", flat=True)) == ["chat"]


def test_sync_calls_work_too(remote, editor):
    memory = remote(editor)
    memory._session_call("add", {"session_id": "s", "items": [user("sync")]})
    assert memory._session_call("get", {"session_id": "s", "limit": None}) == [user("sync")]
    assert memory._session_call("clear", {"session_id": "s"}) == 1


def test_a_reader_key_reads_but_cannot_write(remote, reader, project_a):
    from conversations.services import add_session_items

    add_session_items(project=project_a, session_id="chat-1", items=[user("hi")], actor=None)
    memory = remote(reader)
    session = EngramiaSession("chat-1", memory)

    async def scenario():
        items = await session.get_items()
        with pytest.raises(EngramiaPermissionError):
            await session.add_items([user("nope")])
        with pytest.raises(EngramiaPermissionError):
            await session.pop_item()
        with pytest.raises(EngramiaPermissionError):
            await session.clear_session()
        return items

    assert run(memory, scenario) == [user("hi")]
    assert SessionItem.objects.count() == 1


def test_both_modes_store_identical_json(remote, editor):
    message = ResponseOutputMessage(
        id="msg_1",
        content=[ResponseOutputText(annotations=[], text="Hello ☕", type="output_text")],
        role="assistant",
        status="completed",
        type="message",
    )
    items = [user("hi"), message]
    remote_memory = remote(editor)
    local_memory = Memory(editor.project.path)

    async def scenario():
        await EngramiaSession("remote", remote_memory).add_items(items)
        await EngramiaSession("local", local_memory).add_items(items)
        return (
            await EngramiaSession("remote", remote_memory).get_items(),
            await EngramiaSession("local", local_memory).get_items(),
        )

    from_remote, from_local = run(remote_memory, scenario)
    assert from_remote == from_local
    assert from_remote[1] == message.model_dump(mode="json", exclude_unset=True)
    stored = {row.session_id: row.item for row in SessionItem.objects.filter(position=2)}
    assert stored["remote"] == stored["local"]


def test_both_modes_refuse_the_same_input(remote, editor):
    memories = {"remote": remote(editor), "local": Memory(editor.project.path)}

    async def attempt(memory: Memory, call) -> str:
        with pytest.raises(EngramiaValidationError) as caught:
            await call(memory)
        (error,) = caught.value.errors
        return error["attr"].split(".")[0]  # remote names the place inside items: items.0.x

    cases = {
        "limit": lambda m: EngramiaSession("s", m).get_items(limit=10_001),
        "items": lambda m: EngramiaSession("s", m).add_items(["not an object"]),
        "nan": lambda m: EngramiaSession("s", m).add_items([{"x": float("nan")}]),
        "nul": lambda m: EngramiaSession("s", m).add_items([{"x": "a\x00b"}]),
        "many": lambda m: EngramiaSession("s", m).add_items([user("x")] * 1001),
        "id": lambda m: EngramiaSession("a\x00b", m).get_items(),
        "set": lambda m: EngramiaSession("s", m).add_items([{"x": {1, 2}}]),
    }

    async def scenario():
        return {
            name: {mode: await attempt(memory, call) for mode, memory in memories.items()}
            for name, call in cases.items()
        }

    attrs = run(memories["remote"], scenario)
    assert attrs == {
        "limit": {"remote": "limit", "local": "limit"},
        "items": {"remote": "items", "local": "items"},
        "nan": {"remote": "items", "local": "items"},
        "nul": {"remote": "items", "local": "items"},
        "many": {"remote": "items", "local": "items"},
        "id": {"remote": "session_id", "local": "session_id"},
        "set": {"remote": "items", "local": "items"},
    }
    assert not SessionItem.objects.exists()


def test_a_session_carries_history_into_the_next_run(remote, editor, offline_model):
    memory = remote(editor)
    session = EngramiaSession("user-7", memory)
    agent = Agent(
        name="coder", instructions=engramia_instructions(memory, base="B"), model="gpt-4.1"
    )

    async def first_run():
        await Runner.run(agent, "Build a CSV parser.", session=session)

    async def second_run():  # another loop, as a new process would be: only the server remembers
        await Runner.run(agent, "Now add quoting.", session=EngramiaSession("user-7", memory))
        return await session.get_items()

    run(memory, first_run)
    history = run(memory, second_run)
    second_input = offline_model.calls[1].input
    assert second_input[0] == {"role": "user", "content": "Build a CSV parser."}
    assert second_input[-1] == {"role": "user", "content": "Now add quoting."}
    assert [item.get("role") for item in history] == ["user", "assistant", "user", "assistant"]
    stored = SessionItem.objects.filter(project=editor.project, session_id="user-7")
    assert stored.count() == 4


@pytest.mark.django_db(transaction=False)
def test_ids_are_encoded_whole_and_throttled_appends_are_retried():
    added = Answer(201, {"session_id": "a/b", "added": 1})
    throttled = Answer(429, {"type": "client_error", "errors": []}, {"Retry-After": "0"})
    with FakeEngramiaAPI(throttled, added, default=Answer(200, {"items": []})) as api:
        memory = Memory(api_url=api.url, api_key="eng_a_b")
        assert memory._session_call("add", {"session_id": "a/b", "items": [user("x")]}) == 1
        memory._session_call("get", {"session_id": "..", "limit": 3})
        memory.close()
    assert [(seen.method, seen.path) for seen in api.requests] == [
        ("POST", "/v1/sessions/a%2Fb/items"),
        ("POST", "/v1/sessions/a%2Fb/items"),
        ("GET", "/v1/sessions/%2E%2E/items?limit=3"),
    ]
    assert api.requests[0].body == {"items": [user("x")]}


def test_long_histories_are_read_page_by_page_like_local_mode(remote, editor):
    from conversations.services import add_session_items

    items = [user(str(n)) for n in range(2500)]
    add_session_items(project=editor.project, session_id="long", items=items, actor=None)
    memories = {"remote": remote(editor), "local": Memory(editor.project.path)}

    async def scenario():
        results = {}
        for mode, memory in memories.items():
            session = EngramiaSession("long", memory)
            results[mode] = [
                await session.get_items(),
                await session.get_items(limit=1500),
                await session.get_items(limit=1000),
                await session.get_items(limit=7),
            ]
        return results

    results = run(memories["remote"], scenario)
    assert results["remote"] == results["local"]
    everything, latest, one_page, few = results["remote"]
    assert everything == items
    assert latest == items[1000:] and one_page == items[1500:] and few == items[-7:]


@pytest.mark.django_db(transaction=False)
def test_reading_follows_the_cursor_until_the_oldest_page():
    newer = Answer(200, {"items": [user("c"), user("d")], "next_before": 3})
    older = Answer(200, {"items": [user("a"), user("b")], "next_before": None})
    with FakeEngramiaAPI(newer, older, default=Answer(200, {"items": []})) as api:
        memory = Memory(api_url=api.url, api_key="eng_a_b")
        items = memory._session_call("get", {"session_id": "s", "limit": None})
        memory.close()
    assert items == [user("a"), user("b"), user("c"), user("d")]
    assert [seen.path for seen in api.requests] == [
        "/v1/sessions/s/items?limit=1000",
        "/v1/sessions/s/items?limit=1000&before=3",
    ]
