"""lookup.run_start: what starting a run reads in one round trip, as the ORM would read it."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from assistants.models import Assistant, Message, Run, Thread
from assistants.openai.services.lookup import run_start
from engramia_site.errors import NotFound
from tests.assistants.openai.conftest import new_assistant, new_thread

TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


def fields(instance: object) -> dict[str, object]:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_the_rows_come_back_as_the_orm_reads_them(api, project_a):
    assistant = new_assistant(api, tools=[TOOL], metadata={"team": "search"})
    thread = new_thread(api, "first", "second", metadata={"user": "u-1"})
    with transaction.atomic():
        start = run_start(project_a, thread["id"], assistant["id"], with_messages=True)
    assert fields(start.thread) == fields(Thread.objects.get(public_id=thread["id"]))
    assert start.thread.metadata == {"user": "u-1"}  # JSON columns decoded, not text
    assert fields(start.assistant) == fields(Assistant.objects.get(public_id=assistant["id"]))
    assert start.assistant.tools[0]["function"]["name"] == "lookup"
    stored = Message.objects.filter(thread__public_id=thread["id"]).order_by("created_at", "id")
    assert [fields(m) for m in start.messages] == [fields(m) for m in stored]
    assert [m.text() for m in start.messages] == ["first", "second"]
    assert start.active is None


def test_the_active_run_and_no_messages_unless_asked(api, project_a):
    assistant = new_assistant(api)
    thread = new_thread(api, "hello")
    run = active_run(project_a, thread["id"], assistant["id"])
    with transaction.atomic():
        start = run_start(project_a, thread["id"], "asst_missing", with_messages=False)
    assert fields(start.active) == fields(Run.objects.get(pk=run.pk))
    assert start.active.metadata == {"k": "v"}
    assert start.assistant is None  # the caller refuses with the assistant's 404
    assert start.messages is None


def active_run(project: Any, thread_id: str, assistant_id: str) -> Run:
    return Run.objects.create(
        project=project,
        thread=Thread.objects.get(public_id=thread_id),
        assistant=Assistant.objects.get(public_id=assistant_id),
        public_id=f"run_active{Run.objects.count()}",
        status="queued",
        metadata={"k": "v"},
        expires_at=timezone.now() + timedelta(minutes=10),
    )


@pytest.mark.django_db(transaction=True)
def test_what_was_committed_while_waiting_for_the_lock_is_read(api, project_a):
    """Two starts at once: the second waits for the thread's lock, then sees the first's run
    (a single statement would read the run as it was before the wait)."""
    assistant = new_assistant(api)
    thread = new_thread(api, "hello")
    locked, seen = threading.Event(), {}

    def first() -> None:
        try:
            with transaction.atomic():
                Thread.objects.select_for_update().get(public_id=thread["id"])
                locked.set()
                time.sleep(0.5)  # the second start is waiting on the lock by now
                seen["run"] = active_run(project_a, thread["id"], assistant["id"]).pk
        finally:
            connection.close()

    def second() -> None:
        try:
            locked.wait(10)
            with transaction.atomic():
                start = run_start(project_a, thread["id"], assistant["id"], with_messages=True)
                seen["active"] = start.active.pk if start.active else None
        finally:
            connection.close()

    workers = [threading.Thread(target=first), threading.Thread(target=second)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(20)
    assert seen["active"] == seen["run"]


def test_a_thread_of_another_project_is_not_found(api, project_b):
    thread = new_thread(api, "hello")
    with transaction.atomic(), pytest.raises(NotFound, match=thread["id"]):
        run_start(project_b, thread["id"], "asst_x", with_messages=True)


def test_an_unknown_assistant_is_a_404_naming_it(api):
    thread = new_thread(api, "hello")
    body = {"assistant_id": "asst_nope", "stream": True}
    response = api("post", f"/threads/{thread['id']}/runs", body)
    assert response.status_code == 404
    assert "asst_nope" in response.json()["error"]["message"]
