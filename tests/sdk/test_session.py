"""EngramiaSession: the Agents SDK Session protocol on PostgreSQL, per project and session."""

from __future__ import annotations

import asyncio
import getpass

import pytest
from agents import Agent, Runner
from agents.memory import Session, SessionSettings

from engramia import Memory
from engramia.errors import EngramiaConfigError
from engramia.sdk.openai_agents import EngramiaSession, engramia_instructions
from tenants.models import AuditEntry

pytestmark = pytest.mark.django_db(transaction=True)


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def test_items_round_trip_in_order_with_limit_and_pop():
    session = EngramiaSession("chat-1", Memory("acme/support"))
    assert isinstance(session, Session)

    async def scenario():
        assert await session.get_items() == []
        await session.add_items([user("hi"), assistant("hello")])
        await session.add_items(
            [user("parse csv"), {"type": "function_call_output", "call_id": "c1", "output": "3"}]
        )
        everything = await session.get_items()
        latest = await session.get_items(limit=2)
        popped = await session.pop_item()
        after_pop = await session.get_items()
        await session.add_items([assistant("again")])
        return everything, latest, popped, after_pop, await session.get_items()

    everything, latest, popped, after_pop, final = asyncio.run(scenario())
    assert everything == [
        user("hi"),
        assistant("hello"),
        user("parse csv"),
        {"type": "function_call_output", "call_id": "c1", "output": "3"},
    ]
    assert latest == everything[2:]
    assert popped == everything[3] and after_pop == everything[:3]
    assert final == [*everything[:3], assistant("again")]


def test_sessions_and_projects_are_isolated():
    acme = Memory("acme/support")
    globex = Memory("globex/research")

    async def scenario():
        await EngramiaSession("chat-1", acme).add_items([user("acme one")])
        await EngramiaSession("chat-2", acme).add_items([user("acme two")])
        await EngramiaSession("chat-1", globex).add_items([user("globex one")])
        await EngramiaSession("chat-1", acme).clear_session()
        return (
            await EngramiaSession("chat-1", acme).get_items(),
            await EngramiaSession("chat-2", acme).get_items(),
            await EngramiaSession("chat-1", globex).get_items(),
            await EngramiaSession("chat-1", globex).pop_item(),
            await EngramiaSession("chat-1", acme).pop_item(),
        )

    cleared, other_session, other_project, popped, nothing = asyncio.run(scenario())
    assert cleared == [] and other_session == [user("acme two")]
    assert other_project == [user("globex one")] and popped == user("globex one")
    assert nothing is None


def test_a_clear_is_one_audit_entry_naming_the_session():
    memory = Memory("acme/support")
    session = EngramiaSession("support-ticket-42", memory)

    async def scenario():
        await session.add_items([user(f"message {n}") for n in range(5)])
        await session.clear_session()

    asyncio.run(scenario())
    entries = AuditEntry.objects.filter(content_type__model="sessionitem")
    assert entries.count() == 1  # appends are not audited, the clear is one entry
    entry = entries.get()
    assert entry.action == AuditEntry.Action.DELETE
    assert entry.object_repr == "session support-ticket-42"
    assert entry.additional_data["cleared_items"] == 5
    assert entry.actor_email == f"sdk:{getpass.getuser()}"
    assert entry.project.path == "acme/support"


def test_concurrent_appends_keep_positions_dense():
    from conversations.models import SessionItem

    session = EngramiaSession("busy", Memory("acme/support"))

    async def scenario():
        await asyncio.gather(
            *(session.add_items([user(f"{n}-a"), user(f"{n}-b")]) for n in range(6))
        )
        return await session.get_items()

    items = asyncio.run(scenario())
    assert len(items) == 12
    positions = list(
        SessionItem.objects.filter(session_id="busy").values_list("position", flat=True)
    )
    assert sorted(positions) == list(range(1, 13))
    for n in range(6):  # each call's items stay together and in order
        index = items.index(user(f"{n}-a"))
        assert items[index + 1] == user(f"{n}-b")


def test_session_settings_limit_applies_by_default():
    session = EngramiaSession(
        "chat-1", Memory("acme/support"), session_settings=SessionSettings(limit=1)
    )

    async def scenario():
        await session.add_items([user("one"), user("two")])
        return await session.get_items(), await session.get_items(limit=5)

    assert asyncio.run(scenario()) == ([user("two")], [user("one"), user("two")])


def test_a_session_carries_history_into_the_next_run(offline_model):
    memory = Memory("acme/support")
    session = EngramiaSession("user-7", memory)
    agent = Agent(
        name="coder", instructions=engramia_instructions(memory, base="B"), model="gpt-4.1"
    )

    async def scenario():
        await Runner.run(agent, "Build a CSV parser.", session=session)
        await Runner.run(agent, "Now add quoting.", session=session)
        return await session.get_items()

    history = asyncio.run(scenario())
    second_input = offline_model.calls[1].input
    assert second_input[0] == {"role": "user", "content": "Build a CSV parser."}
    assert second_input[-1] == {"role": "user", "content": "Now add quoting."}
    assert [item.get("role") for item in history] == ["user", "assistant", "user", "assistant"]


def test_bad_session_ids_are_rejected():
    memory = Memory("acme/support")
    for bad in ("", "   ", "x" * 256):
        with pytest.raises(EngramiaConfigError):
            EngramiaSession(bad, memory)


def test_popping_an_item_is_audited_without_its_content():
    session = EngramiaSession("chat-9", Memory("acme/support"))

    async def scenario():
        await session.add_items([user("secret question"), assistant("secret answer")])
        return await session.pop_item()

    assert asyncio.run(scenario()) == assistant("secret answer")
    entry = AuditEntry.objects.get(content_type__model="sessionitem")
    assert entry.action == AuditEntry.Action.DELETE and entry.object_repr == "session chat-9 #2"
    assert "secret" not in str(entry.changes) and entry.project.path == "acme/support"
