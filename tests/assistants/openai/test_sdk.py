"""The official `openai` SDK (the pinned version) against the live ASGI server.

The LLM behind every run is a loopback fake; jobs run on a worker thread (`job_runner`) or, for
the crash test, on real worker processes.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from pathlib import Path

import openai
import pytest
from openai import AssistantEventHandler

from assistants.models import Run
from jobs.models import Job
from tests.assistants.openai.conftest import BASE, WEATHER_TOOL, use_llm
from tests.fakes.llm_servers import FakeLLMServer, Reply
from tests.jobs.conftest import start_worker, wait_for  # noqa: F401  (the fixture)

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "migration" / "swap-run-loop.md"


def restore_support_assistant(owner) -> None:
    from assistants.openai.services.restore import restore_assistant

    definition = {"id": "asst_support", "model": "gpt-4o", "instructions": "Help developers."}
    restore_assistant(project=owner.project, definition=definition, actor=None)


def test_the_migration_guides_before_program_runs_unchanged(
    asgi_server, owner, llm, job_runner, monkeypatch
):
    restore_support_assistant(owner)
    before = re.search(r"Before.*?```python\n(.*?)```", GUIDE.read_text(), re.S).group(1)
    assert before.count("client = OpenAI()") == 1
    # The one change the guide asks for: where the client points, and with which key.
    monkeypatch.setenv("ENGRAMIA_URL", f"{asgi_server}{BASE}")
    monkeypatch.setenv("ENGRAMIA_KEY", owner.secret)
    changed = before.replace(
        "client = OpenAI()",
        'client = OpenAI(base_url=os.environ["ENGRAMIA_URL"], api_key=os.environ["ENGRAMIA_KEY"])',
    )
    namespace: dict = {"os": __import__("os")}
    exec(compile(changed, str(GUIDE), "exec"), namespace)  # noqa: S102 - the documented program
    run = namespace["run"]
    assert run.status == "completed" and run.assistant_id == "asst_support"
    messages = namespace["client"].beta.threads.messages.list(thread_id=run.thread_id)
    assert [m.content[0].text.value for m in messages.data] == [
        "Hello there.",
        "Build a CSV parser.",
    ]
    assert llm.requests[0].json["model"] == "gpt-4o"


class Recorder(AssistantEventHandler):
    """The SDK's documented handler, recording what it was told."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.calls_created: list[str] = []
        self.calls_done: list[str] = []
        self.messages_done: list[str] = []

    def on_text_delta(self, delta, snapshot) -> None:
        self.text.append(delta.value)

    def on_tool_call_created(self, tool_call) -> None:
        self.calls_created.append(tool_call.function.name)

    def on_tool_call_done(self, tool_call) -> None:
        self.calls_done.append(tool_call.function.arguments)

    def on_message_done(self, message) -> None:
        self.messages_done.append(message.content[0].text.value)


def test_runs_stream_through_a_function_tool_and_submit_tool_outputs_stream(sdk, llm):
    assistant = sdk.beta.assistants.create(model="gpt-test", tools=[WEATHER_TOOL])
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Weather in Oslo?"}])
    llm.enqueue(Reply.calling("get_weather", {"city": "Oslo"}), Reply(text="It rains in Oslo."))
    first = Recorder()
    with sdk.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=first
    ) as stream:
        stream.until_done()
    run = first.current_run
    assert run.status == "requires_action"
    assert first.calls_created == ["get_weather"] and first.calls_done == ['{"city": "Oslo"}']
    calls = run.required_action.submit_tool_outputs.tool_calls
    second = Recorder()
    with sdk.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=thread.id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": calls[0].id, "output": "12 C, rain"}],
        event_handler=second,
    ) as stream:
        stream.until_done()
    assert "".join(second.text) == "It rains in Oslo."
    assert second.messages_done == ["It rains in Oslo."]
    assert second.get_final_run().status == "completed"
    assert [m.id for m in second.get_final_messages()] == [
        sdk.beta.threads.messages.list(thread_id=thread.id).data[0].id
    ]
    assert "12 C, rain" in str(llm.requests[-1].json)


@pytest.mark.worker
def test_create_and_poll_survives_a_killed_worker(sdk, owner, start_worker, monkeypatch):  # noqa: F811
    def answer(request):
        # The first attempt's model call never returns: its worker is killed meanwhile.
        return Reply.slow(60) if len(fake.requests) == 1 else Reply(text="Recovered answer.")

    with FakeLLMServer(default=answer) as fake:
        use_llm(monkeypatch, fake)
        assistant = sdk.beta.assistants.create(model="gpt-test")
        thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Survive this."}])
        first = start_worker()
        polled: dict = {}

        def create_and_poll() -> None:
            polled["run"] = sdk.beta.threads.runs.create_and_poll(
                thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=100
            )

        caller = threading.Thread(target=create_and_poll)
        caller.start()
        wait_for(lambda: fake.requests, timeout=40, what="the first model call", log=first.log_tail)
        first.kill(signal.SIGKILL)
        second = start_worker()
        caller.join(timeout=60)
        assert not caller.is_alive(), second.log_tail()
    run = polled["run"]
    assert run.status == "completed"
    messages = sdk.beta.threads.messages.list(thread_id=thread.id).data
    assert [m.content[0].text.value for m in messages] == ["Recovered answer.", "Survive this."]
    # The job goes on after the run completes (it learns the exchange), so wait for its end.
    job_pk = Run.objects.get(public_id=run.id).job_id
    job = wait_for(
        lambda: Job.objects.filter(pk=job_pk, finished_at__isnull=False).first(),
        timeout=30,
        what="the run's job to finish",
    )
    assert job.attempts == 2 and job.status == "succeeded"


def test_cursor_pagination_both_ways(sdk):
    thread = sdk.beta.threads.create()
    ids = [
        sdk.beta.threads.messages.create(thread.id, role="user", content=str(n)).id
        for n in range(5)
    ]
    everything = list(sdk.beta.threads.messages.list(thread_id=thread.id, limit=2))
    assert [m.id for m in everything] == list(reversed(ids))
    ascending = list(sdk.beta.threads.messages.list(thread_id=thread.id, limit=2, order="asc"))
    assert [m.id for m in ascending] == ids
    page = sdk.beta.threads.messages.list(thread_id=thread.id, limit=2, before=ids[1])
    assert [m.id for m in page.data] == [ids[3], ids[2]] and page.has_more
    listed = list(sdk.beta.threads.list(limit=1)) if hasattr(sdk.beta.threads, "list") else None
    assert listed is None or [t.id for t in listed] == [thread.id]


def test_the_run_lock_and_cancel_speak_openais_errors(sdk):
    assistant = sdk.beta.assistants.create(model="gpt-test")
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = sdk.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    with pytest.raises(openai.BadRequestError) as locked:
        sdk.beta.threads.messages.create(thread.id, role="user", content="more")
    assert locked.value.body == {
        "message": f"Can't add messages to {thread.id} while a run {run.id} is active.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    cancelled = sdk.beta.threads.runs.cancel(run_id=run.id, thread_id=thread.id)
    assert cancelled.status == "cancelled"
    assert sdk.beta.threads.messages.create(thread.id, role="user", content="more").id


def test_a_streamed_run_cancelled_mid_answer_ends_cancelled(sdk, monkeypatch):
    with FakeLLMServer(default=Reply(text="one two three four five six", token_delay=0.4)) as fake:
        use_llm(monkeypatch, fake)
        assistant = sdk.beta.assistants.create(model="gpt-test")
        thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "count"}])
        recorder = Recorder()
        with sdk.beta.threads.runs.stream(
            thread_id=thread.id, assistant_id=assistant.id, event_handler=recorder
        ) as stream:
            for event in stream:
                if event.event == "thread.message.delta":
                    sdk.beta.threads.runs.cancel(run_id=stream.current_run.id, thread_id=thread.id)
                    break
            stream.until_done()
    assert recorder.current_run.status == "cancelled"
    message = sdk.beta.threads.messages.list(thread_id=thread.id).data[0]
    assert message.status == "incomplete"


def test_file_search_answers_with_file_citations(sdk, llm, job_runner, tmp_path):
    path = tmp_path / "policy.md"
    path.write_text("# Refunds\n\nRefunds are paid within thirty days.")
    file = sdk.files.create(file=path.open("rb"), purpose="assistants")
    store = sdk.vector_stores.create(name="Policies", file_ids=[file.id])
    assert store.file_counts.completed == 1
    notes = tmp_path / "notes.txt"
    notes.write_text("Shipping is free within the EU.")
    added = sdk.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=notes.open("rb"))
    assert added.status == "completed" and added.vector_store_id == store.id
    assistant = sdk.beta.assistants.create(
        model="gpt-test",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Refund time?"}])
    llm.enqueue(
        Reply.calling("file_search", {"query": "refund"}),
        Reply(text="Thirty days 【0†policy.md】."),
    )
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    text = sdk.beta.threads.messages.list(thread_id=thread.id).data[0].content[0].text
    (citation,) = text.annotations
    assert citation.type == "file_citation" and citation.file_citation.file_id == file.id
    assert text.value[citation.start_index : citation.end_index] == "【0†policy.md】"
    steps = sdk.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id, order="asc")
    assert steps.data[0].step_details.tool_calls[0].type == "file_search"


def test_imported_thread_ids_keep_working(sdk, owner, llm, job_runner):
    from assistants.ndjson import Message
    from assistants.openai.services.restore import restore_thread

    restore_support_assistant(owner)
    old = [
        Message(
            1, "thread_abcOld", "msg_old1", "user", "Old question", 1_700_000_000.0, "asst_support"
        ),
        Message(
            2,
            "thread_abcOld",
            "msg_old2",
            "assistant",
            "Old answer",
            1_700_000_001.0,
            "asst_support",
        ),
    ]
    restore_thread(project=owner.project, thread_id="thread_abcOld", messages=old, actor=None)
    history = sdk.beta.threads.messages.list(thread_id="thread_abcOld", order="asc")
    assert [(m.id, m.content[0].text.value) for m in history.data] == [
        ("msg_old1", "Old question"),
        ("msg_old2", "Old answer"),
    ]
    sdk.beta.threads.messages.create("thread_abcOld", role="user", content="New question")
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id="thread_abcOld", assistant_id="asst_support"
    )
    assert run.status == "completed"
    sent = [m["content"] for m in llm.requests[-1].json["messages"][1:]]
    assert sent == ["Old question", "Old answer", "New question"]


def test_tier3_refusals_are_bad_requests_the_sdk_can_read(sdk):
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.beta.assistants.create(model="gpt-test", tools=[{"type": "code_interpreter"}])
    assert (refused.value.code, refused.value.param) == ("unsupported_tool", "tools[0]")
    thread = sdk.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as image:
        sdk.beta.threads.messages.create(
            thread.id,
            role="user",
            content=[{"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}],
        )
    assert (image.value.code, image.value.param) == ("unsupported_tool", "content[0].image_url")
    assert Job.objects.count() == 0 and not time.sleep(0)
