"""Streamed runs: OpenAI's exact event order, snapshots before deltas, ends of every kind."""

from __future__ import annotations

from asgiref.sync import async_to_sync

from assistants.models import Run
from jobs.models import Job
from memory.models import Pattern
from tests.assistants.openai.conftest import (
    WEATHER_TOOL,
    new_assistant,
    new_thread,
    read_events,
    run_jobs,
)
from tests.fakes.llm_servers import Reply

TEXT_RUN = [
    "thread.run.created",
    "thread.run.queued",
    "thread.run.in_progress",
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.message.created",
    "thread.message.in_progress",
    "thread.message.delta",
    "thread.message.delta",
    "thread.message.completed",
    "thread.run.step.completed",
    "thread.run.completed",
    "done",
]


def stream_run(api, thread, assistant, **fields):
    body = {"assistant_id": assistant["id"], "stream": True, **fields}
    return read_events(api("post", f"/threads/{thread['id']}/runs", body))


def names(events):
    return [name for name, _ in events]


def test_a_streamed_answer_follows_openais_event_order(api, llm):
    assistant = new_assistant(api)
    thread = new_thread(api, "hi")
    llm.enqueue(Reply(text="Hello there."))
    events = stream_run(api, thread, assistant)
    assert names(events) == TEXT_RUN
    created, queued, started = (data for _, data in events[:3])
    assert (created["status"], queued["status"], started["status"]) == (
        "queued",
        "queued",
        "in_progress",
    )
    step, message = events[3][1], events[5][1]
    assert step["step_details"] == {
        "type": "message_creation",
        "message_creation": {"message_id": message["id"]},
    }
    assert (message["status"], message["content"]) == ("in_progress", [])
    first, second = events[7][1], events[8][1]
    assert first == {
        "id": message["id"],
        "object": "thread.message.delta",
        "delta": {
            "content": [
                {"index": 0, "type": "text", "text": {"value": "Hello ", "annotations": []}}
            ]
        },
    }
    assert second["delta"]["content"][0]["text"] == {"value": "there."}
    done = events[9][1]
    assert done["status"] == "completed" and done["content"][0]["text"]["value"] == "Hello there."
    # No usage in the stream of a compatible server: estimated from the text.
    assert events[11][1]["status"] == "completed" and events[11][1]["usage"]["total_tokens"] > 0
    assert events[-1] == ("done", "[DONE]")


def test_a_streamed_function_call_ends_in_requires_action_then_outputs_continue_it(api, llm):
    assistant = new_assistant(api, tools=[WEATHER_TOOL])
    thread = new_thread(api, "Weather?")
    llm.enqueue(Reply.calling("get_weather", {"city": "Oslo"}), Reply(text="Rain."))
    events = stream_run(api, thread, assistant)
    assert names(events) == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.run.step.delta",
        "thread.run.step.delta",
        "thread.run.step.delta",
        "thread.run.requires_action",
        "done",
    ]
    step = events[3][1]
    assert step["type"] == "tool_calls" and step["step_details"]["tool_calls"] == []
    started = events[5][1]["delta"]["step_details"]["tool_calls"][0]
    assert started["function"] == {"name": "get_weather", "arguments": "", "output": None}
    pieces = [
        e[1]["delta"]["step_details"]["tool_calls"][0]["function"]["arguments"] for e in events[6:8]
    ]
    assert "".join(pieces) == '{"city": "Oslo"}'
    run = events[8][1]
    call = run["required_action"]["submit_tool_outputs"]["tool_calls"][0]
    assert call["id"] == started["id"]

    answer = read_events(
        api(
            "post",
            f"/threads/{thread['id']}/runs/{run['id']}/submit_tool_outputs",
            {"tool_outputs": [{"tool_call_id": call["id"], "output": "rain"}], "stream": True},
        )
    )
    assert names(answer) == [
        "thread.run.step.completed",
        "thread.run.queued",
        *TEXT_RUN[2:7],
        "thread.message.delta",
        *TEXT_RUN[9:],
    ]
    completed_step = answer[0][1]
    assert completed_step["id"] == step["id"]
    assert completed_step["step_details"]["tool_calls"][0]["function"]["output"] == "rain"


def test_text_before_a_tool_call_is_a_message_of_its_own(api, llm):
    assistant = new_assistant(api, tools=[WEATHER_TOOL])
    thread = new_thread(api, "Weather?")
    llm.enqueue(Reply(text="Let me check.", tool_calls=[("get_weather", '{"city": "Oslo"}')]))
    events = stream_run(api, thread, assistant)
    assert names(events)[3:13] == [
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
        "thread.message.delta",
        "thread.message.delta",
        "thread.message.delta",
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.step.created",
    ]
    assert names(events)[-2:] == ["thread.run.requires_action", "done"]


def test_a_streamed_run_that_fails_says_why_in_its_last_event(api, llm):
    assistant = new_assistant(api)
    thread = new_thread(api, "hi")
    llm.enqueue(Reply(status=400))
    events = stream_run(api, thread, assistant)
    assert names(events) == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.failed",
        "done",
    ]
    assert events[3][1]["last_error"]["code"] == "server_error"


def test_create_and_run_streams_the_new_thread_first(api, llm):
    assistant = new_assistant(api)
    events = read_events(
        api(
            "post",
            "/threads/runs",
            {
                "assistant_id": assistant["id"],
                "stream": True,
                "thread": {"messages": [{"role": "user", "content": "hi"}]},
            },
        )
    )
    assert names(events)[:3] == ["thread.created", "thread.run.created", "thread.run.queued"]
    assert events[1][1]["thread_id"] == events[0][1]["id"]
    assert names(events)[-2:] == ["thread.run.completed", "done"]


def test_a_completed_stream_is_learned_by_a_job_after_the_stream(api, llm):
    assistant = new_assistant(api)
    thread = new_thread(api, "What is the refund window?")
    llm.enqueue(Reply(text="Thirty days."))
    events = stream_run(api, thread, assistant)
    run_id = events[0][1]["id"]
    assert not Pattern.objects.filter(source="assistants-api").exists()
    job = Run.objects.get(public_id=run_id).job
    assert job.kind == "assistants_run" and job.status == "pending"
    run_jobs()
    pattern = Pattern.objects.get(source="assistants-api")
    assert (pattern.task, pattern.code, pattern.run_id) == (
        "What is the refund window?",
        "Thirty days.",
        run_id,
    )
    assert len(llm.requests) == 1  # learning did not run the model again


def started_stream(api, llm, owner, question: str, answer: str) -> Run:
    """A streamed run started on a new thread holding question, the fake to answer it; its
    events are read by the test (assistants.openai.stream.run_events)."""
    from assistants.openai.services.runs import start_run

    assistant = new_assistant(api)
    thread = new_thread(api, question)
    llm.enqueue(Reply(text=answer))
    return start_run(
        project=owner.project,
        thread_id=thread["id"],
        values={"assistant_id": assistant["id"]},
        stream=True,
        actor=owner.user,
    )


def test_a_message_starts_in_the_same_write_as_its_first_delta(api, llm, owner):
    from assistants.openai.stream import run_events

    run = started_stream(api, llm, owner, "hi", "Hello there.")

    async def read() -> list[bytes]:
        return [chunk async for chunk in run_events([], run.pk, owner.user, None)]

    chunks = [
        [
            line.removeprefix(b"event: ").decode()
            for line in chunk.split(b"\n")
            if line[:6] == b"event:"
        ]
        for chunk in async_to_sync(read)()
    ]
    assert [name for chunk in chunks for name in chunk] == TEXT_RUN[2:]
    assert chunks[0] == ["thread.run.in_progress"]  # sent before the model is asked
    assert chunks[1] == [*TEXT_RUN[3:7], "thread.message.delta"]  # one write, not five
    assert all(len(chunk) == 1 for chunk in chunks[2:])


def _learning_job(run_pk: int) -> tuple[str, bool, int]:
    """The run's learning job: status, whether it is held, and the broker's message count."""
    from django_q.models import OrmQ

    job = Run.objects.select_related("job").get(pk=run_pk).job
    assert job is not None and job.kind == "assistants_run"
    return job.status, job.requeue_at is not None, OrmQ.objects.count()


def test_the_learning_job_is_queued_once_the_client_has_done(api, llm, owner):
    from asgiref.sync import sync_to_async

    from assistants.openai.stream import DONE, run_events

    run = started_stream(api, llm, owner, "What is the refund window?", "Thirty days.")

    async def read() -> list[tuple[str, bool, int]]:
        seen = []
        async for chunk in run_events([], run.pk, owner.user, None):
            if chunk.endswith(DONE):  # what the job is while the client reads its `done`
                seen.append(await sync_to_async(_learning_job)(run.pk))
        seen.append(await sync_to_async(_learning_job)(run.pk))
        return seen

    at_done, after = async_to_sync(read)()
    assert at_done[:2] == ("pending", True)  # stored, held: not on the queue yet
    assert after == ("pending", False, at_done[2] + 1)  # queued once, after `done`
    run_jobs()
    assert Run.objects.get(pk=run.pk).learned


def test_a_client_that_leaves_at_done_still_gets_its_run_learned(api, llm, owner):
    from asgiref.sync import sync_to_async

    from assistants.openai.stream import DONE, run_events

    run = started_stream(api, llm, owner, "What is the refund window?", "Thirty days.")

    async def leave_at_done() -> tuple[str, bool, int]:
        stream = run_events([], run.pk, owner.user, None)
        async for chunk in stream:
            if chunk.endswith(DONE):
                break
        before = await sync_to_async(_learning_job)(run.pk)
        await stream.aclose()  # the client went away: the stream is closed, not read to its end
        return before

    before = async_to_sync(leave_at_done)()
    assert _learning_job(run.pk) == ("pending", False, before[2] + 1)
    run_jobs()
    assert Run.objects.get(pk=run.pk).learned


def test_a_stream_cancelled_right_after_done_still_queues_its_learning_job(api, llm, owner):
    import asyncio
    import contextlib
    import threading

    from asgiref.sync import sync_to_async

    from assistants.openai.stream import DONE, run_events

    run = started_stream(api, llm, owner, "What is the refund window?", "Thirty days.")
    entered, gate = threading.Event(), threading.Event()

    def occupy() -> None:
        entered.set()
        gate.wait(30)

    async def cancel_after_done() -> None:
        stream = run_events([], run.pk, owner.user, None)
        done = asyncio.Event()
        blocker = None

        async def send() -> None:  # as the web server's bridge sends the stream
            nonlocal blocker
            async for chunk in stream:
                if chunk.endswith(DONE):
                    # The stream's thread busy: the stream's last call waits in its queue.
                    blocker = asyncio.ensure_future(sync_to_async(occupy)())
                    while not entered.is_set():
                        await asyncio.sleep(0.001)
                    done.set()

        sending = asyncio.ensure_future(send())
        await done.wait()
        sending.cancel()  # the client left once it had `done`: the bridge cancels the sending
        with contextlib.suppress(asyncio.CancelledError):
            await sending
        gate.set()
        assert blocker is not None
        await blocker
        await stream.aclose()
        # A server's event loop goes on after a request: let what the stream left run.
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        await asyncio.gather(*others, return_exceptions=True)

    async_to_sync(cancel_after_done)()
    status, held, _ = _learning_job(run.pk)
    assert (status, held) == ("pending", False)
    run_jobs()
    assert Run.objects.get(pk=run.pk).learned


def test_a_stream_cancelled_while_storing_its_answer_still_queues_its_learning_job(
    api, llm, owner, monkeypatch
):
    import asyncio
    import contextlib
    import threading

    from assistants.openai.services import steps
    from assistants.openai.stream import run_events

    run = started_stream(api, llm, owner, "What is the refund window?", "Thirty days.")
    entered, gate = threading.Event(), threading.Event()
    complete_answer = steps.complete_answer

    def slow_complete_answer(**kwargs):
        entered.set()
        gate.wait(30)
        return complete_answer(**kwargs)

    monkeypatch.setattr(steps, "complete_answer", slow_complete_answer)

    async def leave_while_storing() -> None:
        stream = run_events([], run.pk, owner.user, None)

        async def send() -> None:
            async for _ in stream:
                pass

        sending = asyncio.ensure_future(send())
        while not entered.is_set():
            await asyncio.sleep(0.001)
        sending.cancel()  # the client left while the answer was being stored
        await asyncio.sleep(0.05)  # the stream has had its CancelledError
        gate.set()
        with contextlib.suppress(asyncio.CancelledError):
            await sending
        await stream.aclose()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        await asyncio.gather(*others, return_exceptions=True)

    async_to_sync(leave_while_storing)()
    assert Run.objects.get(pk=run.pk).status == "completed"
    status, held, _ = _learning_job(run.pk)
    assert (status, held) == ("pending", False)  # queued now, not left to the sweep


def test_a_client_that_leaves_mid_stream_hands_the_run_to_a_job(api, llm, owner):
    from assistants.openai.stream import run_events

    run = started_stream(api, llm, owner, "hi", "one two three four")

    async def leave_after_first_delta() -> list[bytes]:
        received = []
        stream = run_events([], run.pk, owner.user, None)
        async for chunk in stream:
            received.append(chunk)
            if b"thread.message.delta" in chunk:
                break
        await stream.aclose()
        return received

    received = async_to_sync(leave_after_first_delta)()
    assert b"thread.message.delta" in received[-1]
    handed = Run.objects.get(pk=run.pk)
    assert handed.status == "in_progress" and handed.job.status == "pending"
    llm.enqueue(Reply(text="The whole answer."))
    run_jobs()
    done = Run.objects.get(pk=run.pk)
    assert done.status == "completed" and done.learned
    texts = [
        m["content"][0]["text"]["value"]
        for m in api("get", f"/threads/{run.thread.public_id}/messages").json()["data"]
    ]
    assert texts == ["The whole answer.", "hi"]  # the half-written message was replaced
    assert Job.objects.filter(kind="assistants_run").count() == 1


def test_a_client_that_leaves_the_live_server_mid_stream_hands_the_run_to_a_job(
    asgi_server, llm, owner, sdk
):
    """Through the web server as `engramia serve` runs it: the disconnect reaches the stream."""
    import time

    import httpx

    assistant = sdk.beta.assistants.create(model="gpt-test")
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    llm.enqueue(Reply(text="one two three four five six", token_delay=0.5))
    headers = {"Authorization": f"Bearer {owner.secret}", "OpenAI-Beta": "assistants=v2"}
    url = f"{asgi_server}/openai/v1/threads/{thread.id}/runs"
    with httpx.stream(
        "POST", url, json={"assistant_id": assistant.id, "stream": True}, headers=headers
    ) as answer:
        for line in answer.iter_lines():
            if line == "event: thread.message.delta":
                break  # and close the connection mid-answer
    deadline = time.monotonic() + 15
    run = Run.objects.get(thread__public_id=thread.id)
    while run.job_id is None and time.monotonic() < deadline:
        time.sleep(0.05)
        run.refresh_from_db()
    assert run.status == "in_progress" and run.job is not None  # handed over, not left hanging
