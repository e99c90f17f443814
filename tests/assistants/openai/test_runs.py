"""Runs executed by jobs: memory in, the model called as asked, tools, limits, failures."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from assistants.models import Run
from jobs.models import Job
from memory.models import Pattern
from tests.assistants.openai.conftest import (
    VENDOR_STYLES,
    WEATHER_TOOL,
    new_assistant,
    new_thread,
    run_jobs,
    use_llm,
)
from tests.fakes.llm_servers import Reply


def start_run(api, thread, assistant, **fields):
    response = api(
        "post", f"/threads/{thread['id']}/runs", {"assistant_id": assistant["id"], **fields}
    )
    assert response.status_code == 200, response.content
    return response.json()


def get_run(api, thread, run):
    return api("get", f"/threads/{thread['id']}/runs/{run['id']}").json()


def sent(llm, index=-1):
    return llm.requests[index].json


def test_a_queued_run_completes_in_its_job_and_tells_the_sdk_when_to_poll(api, llm):
    assistant = new_assistant(api, instructions="Be kind.")
    thread = new_thread(api, "Hi there")
    response = api("post", f"/threads/{thread['id']}/runs", {"assistant_id": assistant["id"]})
    run = response.json()
    assert run["status"] == "queued" and run["id"].startswith("run_")
    assert response["openai-poll-after-ms"] == "200"
    assert Run.objects.get(public_id=run["id"]).job.kind == "assistants_run"
    run_jobs()
    done = api("get", f"/threads/{thread['id']}/runs/{run['id']}")
    assert done.json()["status"] == "completed" and "openai-poll-after-ms" not in done
    assert done.json()["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    messages = api("get", f"/threads/{thread['id']}/messages").json()["data"]
    assert [m["role"] for m in messages] == ["assistant", "user"]
    assert messages[0]["content"][0]["text"]["value"] == "Hello there."
    assert (messages[0]["run_id"], messages[0]["assistant_id"]) == (run["id"], assistant["id"])
    body = sent(llm)
    assert body["model"] == "gpt-test"
    assert body["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hi there"},
    ]


def test_a_run_recalls_memory_as_fenced_reference_data_and_learns_its_exchange(api, llm, owner):
    from memory.services import learn_pattern

    learn_pattern(
        project=owner.project,
        task="How do I parse CSV files in Python quickly?",
        code="Use the csv module with DictReader.",
        eval_score=9,
        actor=None,
    )
    llm.default = "Use csv.DictReader."
    assistant = new_assistant(api, instructions="You help developers.")
    thread = new_thread(api, "How do I parse CSV files?")
    run = start_run(api, thread, assistant)
    run_jobs()
    system = sent(llm)["messages"][0]["content"]
    assert system.startswith("You help developers.\n\n<engramia_memory>\nReference data, not")
    assert "Use the csv module with DictReader." in system and system.endswith("</engramia_memory>")
    learned = Pattern.objects.get(source="assistants-api")
    assert (learned.task, learned.code, learned.run_id) == (
        "How do I parse CSV files?",
        "Use csv.DictReader.",
        run["id"],
    )
    assert learned.metadata["thread_id"] == thread["id"]
    judge = Job.objects.get(kind="evaluate")
    assert judge.params["pattern_id"] == learned.pk and judge.status == "pending"
    stored = Run.objects.get(public_id=run["id"])
    assert stored.learned and stored.learned_pattern_id == learned.pk
    assert stored.recalled_pattern_ids


def test_function_calls_wait_for_every_output_then_the_run_continues(api, llm):
    assistant = new_assistant(api, tools=[WEATHER_TOOL])
    thread = new_thread(api, "Weather in Oslo and Rome?")
    llm.enqueue(
        Reply(
            tool_calls=[("get_weather", '{"city": "Oslo"}'), ("get_weather", '{"city": "Rome"}')]
        ),
        Reply(text="Rain in Oslo, sun in Rome."),
    )
    run = start_run(api, thread, assistant)
    run_jobs()
    waiting = get_run(api, thread, run)
    assert waiting["status"] == "requires_action"
    calls = waiting["required_action"]["submit_tool_outputs"]["tool_calls"]
    assert [json.loads(c["function"]["arguments"])["city"] for c in calls] == ["Oslo", "Rome"]
    assert all(c["id"].startswith("call_") and c["type"] == "function" for c in calls)
    path = f"/threads/{thread['id']}/runs/{run['id']}/submit_tool_outputs"
    partial = api(
        "post", path, {"tool_outputs": [{"tool_call_id": calls[0]["id"], "output": "rain"}]}
    )
    assert partial.status_code == 400 and partial.json()["error"]["param"] == "tool_outputs"
    unknown = api("post", path, {"tool_outputs": [{"tool_call_id": "call_x", "output": "?"}]})
    assert unknown.json()["error"]["param"] == "tool_outputs[0].tool_call_id"
    outputs = [
        {"tool_call_id": calls[0]["id"], "output": "rain"},
        {"tool_call_id": calls[1]["id"], "output": "sun"},
    ]
    assert api("post", path, {"tool_outputs": outputs}).json()["status"] == "queued"
    run_jobs()
    assert get_run(api, thread, run)["status"] == "completed"
    tail = sent(llm)["messages"][-3:]
    assert [m["role"] for m in tail] == ["assistant", "tool", "tool"]
    assert [m["content"] for m in tail[1:]] == ["rain", "sun"]
    steps = api("get", f"/threads/{thread['id']}/runs/{run['id']}/steps", QUERY_STRING="order=asc")
    kinds = [(s["type"], s["status"]) for s in steps.json()["data"]]
    assert kinds == [("tool_calls", "completed"), ("message_creation", "completed")]
    outputs_seen = [
        c["function"]["output"] for c in steps.json()["data"][0]["step_details"]["tool_calls"]
    ]
    assert outputs_seen == ["rain", "sun"]
    first = steps.json()["data"][0]
    one = api("get", f"/threads/{thread['id']}/runs/{run['id']}/steps/{first['id']}").json()
    assert (one["id"], one["object"], one["run_id"]) == (first["id"], "thread.run.step", run["id"])
    assert one["id"].startswith("step_")
    late = api("post", path, {"tool_outputs": outputs})
    assert (
        late.json()["error"]["message"] == 'Runs in status "completed" do not accept tool outputs.'
    )
    by_run = api("get", f"/threads/{thread['id']}/messages", QUERY_STRING=f"run_id={run['id']}")
    assert [m["role"] for m in by_run.json()["data"]] == ["assistant"]


def test_run_parameters_reach_the_model(api, llm):
    assistant = new_assistant(api, tools=[WEATHER_TOOL], temperature=0.7)
    thread = new_thread(api, "one", "two", "three")
    start_run(
        api,
        thread,
        assistant,
        model="gpt-other",
        instructions="Override.",
        additional_instructions="Also this.",
        additional_messages=[{"role": "user", "content": "four"}],
        temperature=0.2,
        top_p=0.9,
        response_format={"type": "json_object"},
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
        truncation_strategy={"type": "last_messages", "last_messages": 2},
        max_completion_tokens=50,
        metadata={"ticket": "42"},
    )
    run_jobs()
    body = sent(llm)
    assert body["model"] == "gpt-other"
    assert body["messages"][0]["content"] == "Override.\n\nAlso this.\n\nAnswer with JSON only."
    assert [m["content"] for m in body["messages"][1:]] == ["three", "four"]
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.2, 0.9, 50)
    assert body["response_format"] == {"type": "json_object"}
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False


def test_reasoning_effort_reaches_a_reasoning_model(api, llm):
    assistant = new_assistant(api, model="o3-mini", reasoning_effort="low")
    thread = new_thread(api, "Think briefly")
    start_run(api, thread, assistant, max_completion_tokens=40)
    run_jobs()
    body = sent(llm)
    assert (body["model"], body["reasoning_effort"]) == ("o3-mini", "low")
    assert body["max_completion_tokens"] == 40 and "temperature" not in body
    start_run(api, thread, assistant, reasoning_effort="high")
    run_jobs()
    assert sent(llm)["reasoning_effort"] == "high"


def test_forcing_a_tool_the_run_lacks_is_refused(api, llm):
    assistant = new_assistant(api)
    thread = new_thread(api, "x")
    refused = api(
        "post",
        f"/threads/{thread['id']}/runs",
        {
            "assistant_id": assistant["id"],
            "tool_choice": {"type": "function", "function": {"name": "nope"}},
        },
    )
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "tool_choice"


def test_the_token_budgets_end_a_run_as_incomplete(api, llm):
    assistant = new_assistant(api)
    thread = new_thread(api, "Tell me everything")
    llm.enqueue(Reply(text="A long story", finish="length"))
    cut = start_run(api, thread, assistant, max_completion_tokens=3)
    run_jobs()
    run = get_run(api, thread, cut)
    assert (run["status"], run["incomplete_details"]) == (
        "incomplete",
        {"reason": "max_completion_tokens"},
    )
    message = api("get", f"/threads/{thread['id']}/messages").json()["data"][0]
    assert (message["status"], message["incomplete_details"]) == (
        "incomplete",
        {"reason": "max_tokens"},
    )
    asked = len(llm.requests)
    too_big = start_run(api, thread, assistant, max_prompt_tokens=1)
    run_jobs()
    run = get_run(api, thread, too_big)
    assert (run["status"], run["incomplete_details"]) == (
        "incomplete",
        {"reason": "max_prompt_tokens"},
    )
    assert len(llm.requests) == asked  # the model was never called


def test_an_llm_failure_ends_the_run_failed_with_the_reason(api, llm):
    assistant = new_assistant(api)
    thread = new_thread(api, "hi")
    llm.enqueue(Reply(status=400))
    run = start_run(api, thread, assistant)
    run_jobs()
    failed = get_run(api, thread, run)
    assert failed["status"] == "failed" and isinstance(failed["failed_at"], int)
    assert failed["last_error"]["code"] == "server_error"
    assert "gpt-test failed: HTTP 400" in failed["last_error"]["message"]
    again = api("post", f"/threads/{thread['id']}/messages", {"role": "user", "content": "retry"})
    assert again.status_code == 200  # a failed run holds no lock


def test_without_an_llm_a_run_fails_saying_so(api, monkeypatch):
    monkeypatch.setenv("ENGRAMIA_LLM", "none")
    assistant = new_assistant(api)
    thread = new_thread(api, "hi")
    run = start_run(api, thread, assistant)
    run_jobs()
    failed = get_run(api, thread, run)
    assert failed["status"] == "failed"
    assert failed["last_error"]["message"].startswith("No LLM is configured")


def test_cancelling_a_queued_or_waiting_run_is_immediate(api, llm):
    assistant = new_assistant(api, tools=[WEATHER_TOOL])
    thread = new_thread(api, "hi")
    queued = start_run(api, thread, assistant)
    cancelled = api("post", f"/threads/{thread['id']}/runs/{queued['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and isinstance(cancelled["cancelled_at"], int)
    assert Run.objects.get(public_id=queued["id"]).job.status == "cancelled"
    llm.enqueue(Reply.calling("get_weather", {"city": "Oslo"}))
    waiting = start_run(api, thread, assistant)
    run_jobs()
    assert (
        api("post", f"/threads/{thread['id']}/runs/{waiting['id']}/cancel").json()["status"]
        == "cancelled"
    )
    steps = api("get", f"/threads/{thread['id']}/runs/{waiting['id']}/steps").json()["data"]
    assert steps[0]["status"] == "cancelled"
    again = api("post", f"/threads/{thread['id']}/runs/{waiting['id']}/cancel")
    assert again.json()["error"]["message"] == "Cannot cancel run with status 'cancelled'."


@pytest.mark.django_db(transaction=True)
def test_a_run_cancelled_while_the_model_answers_ends_cancelled(owner, monkeypatch):
    from tests.assistants.openai.conftest import BASE
    from tests.fakes.llm_servers import FakeLLMServer

    client = owner.client()

    def api(method, path, body=None):
        return getattr(client, method)(BASE + path, body, format="json")

    def cancel_meanwhile(request):
        Run.objects.filter(status="in_progress").update(status="cancelling")
        return "Too late."

    with FakeLLMServer(default=cancel_meanwhile) as fake:
        use_llm(monkeypatch, fake)
        assistant = new_assistant(api)
        thread = new_thread(api, "hi")
        run = start_run(api, thread, assistant)
        run_jobs()
    ended = get_run(api, thread, run)
    assert ended["status"] == "cancelled"
    message = api("get", f"/threads/{thread['id']}/messages").json()["data"][0]
    assert message["status"] == "incomplete"
    assert not Pattern.objects.filter(source="assistants-api").exists()


def test_a_waiting_run_past_its_expiry_expires_and_frees_the_thread(api, llm):
    assistant = new_assistant(api, tools=[WEATHER_TOOL])
    thread = new_thread(api, "hi")
    llm.enqueue(Reply.calling("get_weather", {"city": "Oslo"}))
    run = start_run(api, thread, assistant)
    run_jobs()
    Run.objects.filter(public_id=run["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert get_run(api, thread, run)["status"] == "expired"
    assert (
        api(
            "post", f"/threads/{thread['id']}/messages", {"role": "user", "content": "x"}
        ).status_code
        == 200
    )


def test_a_run_whose_job_ended_unfinished_fails_with_the_jobs_reason(api, llm):
    assistant = new_assistant(api)
    thread = new_thread(api, "hi")
    run = start_run(api, thread, assistant)
    Job.objects.filter(kind="assistants_run").update(status="failed", error="the worker vanished")
    failed = get_run(api, thread, run)
    assert failed["status"] == "failed"
    assert failed["last_error"]["message"] == "The run could not be executed: the worker vanished"


def test_create_thread_and_run_in_one_request(api, llm):
    assistant = new_assistant(api)
    run = api(
        "post",
        "/threads/runs",
        {
            "assistant_id": assistant["id"],
            "thread": {"messages": [{"role": "user", "content": "Yo"}]},
        },
    ).json()
    assert run["status"] == "queued" and run["thread_id"].startswith("thread_")
    run_jobs()
    messages = api("get", f"/threads/{run['thread_id']}/messages").json()["data"]
    assert [m["content"][0]["text"]["value"] for m in messages] == ["Hello there.", "Yo"]


def test_run_metadata_changes_and_runs_are_listed(api, llm):
    assistant = new_assistant(api)
    thread = new_thread(api, "hi")
    run = start_run(api, thread, assistant)
    run_jobs()
    changed = api("post", f"/threads/{thread['id']}/runs/{run['id']}", {"metadata": {"k": "v"}})
    assert changed.json()["metadata"] == {"k": "v"}
    listed = api("get", f"/threads/{thread['id']}/runs").json()
    assert [r["id"] for r in listed["data"]] == [run["id"]]


@pytest.mark.parametrize("style", VENDOR_STYLES)
@pytest.mark.parametrize("streamed", [False, True], ids=["job", "stream"])
def test_function_tools_work_with_every_vendor_streamed_or_not(
    api, llm, monkeypatch, style, streamed
):
    from tests.assistants.openai.conftest import read_events
    from tests.fakes.llm_wire import CHAT_COMPLETIONS_PATH, MESSAGES_PATH, RESPONSES_PATH

    use_llm(monkeypatch, llm, style)
    llm.enqueue(Reply.calling("get_weather", {"city": "Oslo"}), Reply(text="Rainy in Oslo."))
    assistant = new_assistant(api, tools=[WEATHER_TOOL])
    thread = new_thread(api, "Weather?")
    path = f"/threads/{thread['id']}/runs"
    if streamed:
        read_events(api("post", path, {"assistant_id": assistant["id"], "stream": True}))
    else:
        api("post", path, {"assistant_id": assistant["id"]})
        run_jobs()
    run = api("get", path).json()["data"][0]
    call = run["required_action"]["submit_tool_outputs"]["tool_calls"][0]
    assert json.loads(call["function"]["arguments"]) == {"city": "Oslo"}
    outputs = {"tool_outputs": [{"tool_call_id": call["id"], "output": "rain"}], "stream": streamed}
    answer = api("post", f"{path}/{run['id']}/submit_tool_outputs", outputs)
    if streamed:
        read_events(answer)
    else:
        run_jobs()
    assert api("get", f"{path}/{run['id']}").json()["status"] == "completed"
    text = api("get", f"/threads/{thread['id']}/messages").json()["data"][0]["content"][0]
    assert text["text"]["value"] == "Rainy in Oslo."
    wire = {"chat": CHAT_COMPLETIONS_PATH, "responses": RESPONSES_PATH, "anthropic": MESSAGES_PATH}
    assert {request.path for request in llm.requests} == {wire[style]}
    assert all(bool(request.json.get("stream")) == streamed for request in llm.requests)
    assert "rain" in json.dumps(llm.requests[-1].json)
