"""lookup.run_start: what starting a run reads in one round trip, as the ORM would read it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
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
        start = run_start(project_a, thread["id"], assistant["id"], timezone.now())
    assert fields(start.thread) == fields(Thread.objects.get(public_id=thread["id"]))
    assert start.thread.metadata == {"user": "u-1"}  # JSON columns decoded, not text
    assert fields(start.assistant) == fields(Assistant.objects.get(public_id=assistant["id"]))
    assert start.assistant.tools[0]["function"]["name"] == "lookup"
    stored = Message.objects.filter(thread__public_id=thread["id"]).order_by("created_at", "id")
    assert [fields(m) for m in start.messages] == [fields(m) for m in stored]
    assert [m.text() for m in start.messages] == ["first", "second"]
    assert start.active is None


def test_the_active_run_and_the_time_bound(api, project_a):
    assistant = new_assistant(api)
    thread = new_thread(api, "hello")
    row = Thread.objects.get(public_id=thread["id"])
    run = Run.objects.create(
        project=project_a,
        thread=row,
        assistant=Assistant.objects.get(public_id=assistant["id"]),
        public_id="run_active",
        status="queued",
        metadata={"k": "v"},
        expires_at=timezone.now() + timedelta(minutes=10),
    )
    with transaction.atomic():
        start = run_start(
            project_a, thread["id"], "asst_missing", timezone.now() - timedelta(hours=1)
        )
    assert fields(start.active) == fields(Run.objects.get(pk=run.pk))
    assert start.active.metadata == {"k": "v"}
    assert start.assistant is None  # the caller refuses with the assistant's 404
    assert start.messages == []  # created after the bound given


def test_a_thread_of_another_project_is_not_found(api, project_b):
    thread = new_thread(api, "hello")
    with transaction.atomic(), pytest.raises(NotFound, match=thread["id"]):
        run_start(project_b, thread["id"], "asst_x", timezone.now())


def test_an_unknown_assistant_is_a_404_naming_it(api):
    thread = new_thread(api, "hello")
    body = {"assistant_id": "asst_nope", "stream": True}
    response = api("post", f"/threads/{thread['id']}/runs", body)
    assert response.status_code == 404
    assert "asst_nope" in response.json()["error"]["message"]
