"""The database side of executing a run: every state change the run engine makes.

Each function is one short transaction on the run's row, locked, and checks the state it
expects: a run cancelled or expired meanwhile is finalized as such, never overwritten. The
engine (assistants.openai.engine) calls these between model calls and never holds a
transaction open while the model answers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from assistants.choices import MessageStatus, RunStatus, StepStatus, StepType
from assistants.models import Message, Run, RunStep
from assistants.openai import ids, prompt
from assistants.openai.services.files import search_stores
from engramia_site.errors import DependencyUnavailable
from engramia_site.request_context import audited
from memory.providers.chat import ChatRequest, Usage

logger = logging.getLogger(__name__)

RUN_KIND = "assistants_run"
RUN_TTL = timedelta(minutes=10)
RECALL_MIN_SIMILARITY = 0.3


@dataclass
class RunState:
    """What the engine knows of a run between model calls."""

    run: Run
    thread_id: str
    request: ChatRequest | None = None
    file_search: dict[str, Any] | None = None
    store_ids: list[str] = field(default_factory=list)
    hits: list[dict[str, Any]] = field(default_factory=list)  # file_search results so far
    recalled: list[prompt.Recalled] | None = None
    usage: Usage = field(default_factory=Usage)
    message: Message | None = None
    message_step: RunStep | None = None
    tool_step: RunStep | None = None


def _locked(run_pk: int) -> Run | None:
    return (
        Run.objects.select_for_update(of=("self",))
        .select_related("thread", "project")
        .filter(pk=run_pk)
        .first()
    )


def _now_fields(run: Run, status: RunStatus) -> list[str]:
    now = timezone.now()
    run.status = status
    stamp = {
        RunStatus.CANCELLED: "cancelled_at",
        RunStatus.FAILED: "failed_at",
        RunStatus.COMPLETED: "completed_at",
    }.get(status)
    if stamp:
        setattr(run, stamp, now)
        return ["status", stamp]
    return ["status"]


@audited
@transaction.atomic
def begin_run(*, run_pk: int, actor: Any) -> RunState | None:
    """Move a queued run in progress and gather its model call; None when nothing is to do.

    A run found in progress was interrupted (its worker died, its client left): what that
    attempt left unfinished is dropped and the round starts again.
    """
    run = _locked(run_pk)
    if run is None or run.status not in (RunStatus.QUEUED, RunStatus.IN_PROGRESS):
        if run is not None and run.status == RunStatus.CANCELLING:
            settle(run, RunStatus.CANCELLED)
        return None
    if run.status == RunStatus.IN_PROGRESS:
        _drop_unfinished(run)
    fields = _now_fields(run, RunStatus.IN_PROGRESS)
    run.started_at = run.started_at or timezone.now()
    run.save(update_fields=[*fields, "started_at"])
    state = RunState(run=run, thread_id=run.thread.public_id)
    state.file_search = prompt.file_search_options(run.tools or [])
    state.store_ids = list(
        ((run.tool_resources or {}).get("file_search") or {}).get("vector_store_ids") or []
    )
    state.hits = _earlier_hits(run)
    return _with_request(state)


def next_round(state: RunState) -> RunState:
    """The state for the model call after a round of file_search (read-only)."""
    return _with_request(state)


def _drop_unfinished(run: Run) -> None:
    RunStep.objects.filter(run=run, status=StepStatus.IN_PROGRESS).delete()
    Message.objects.filter(run=run, status=MessageStatus.IN_PROGRESS).delete()


def _earlier_hits(run: Run) -> list[dict[str, Any]]:
    hits: list[dict[str, Any]] = []
    for step in RunStep.objects.filter(run=run, type=StepType.TOOL_CALLS).order_by(
        "created_at", "id"
    ):
        for call in (step.step_details or {}).get("tool_calls") or []:
            hits.extend((call.get(prompt.FILE_SEARCH) or {}).get("results") or [])
    return hits


def _with_request(state: RunState) -> RunState:
    """The run's next model call: its thread, its own rounds so far, recalled memory.

    state.request stays None when not even the last message fits max_prompt_tokens.
    """
    run = state.run
    thread_messages = list(
        Message.objects.filter(thread_id=run.thread_id, status=MessageStatus.COMPLETED)
        .exclude(run=run)
        .filter(created_at__lte=run.created_at)
        .order_by("created_at", "id")
    )
    own: list[Any] = list(Message.objects.filter(run=run, status=MessageStatus.COMPLETED))
    own += list(
        RunStep.objects.filter(run=run, type=StepType.TOOL_CALLS, status=StepStatus.COMPLETED)
    )
    own.sort(key=lambda item: (item.created_at, item.pk))
    if state.recalled is None:
        state.recalled = _recall(run, thread_messages)
        if state.recalled:
            run.recalled_pattern_ids = [item.pattern_id for item in state.recalled]
            run.save(update_fields=["recalled_pattern_ids"])
    recalled = state.recalled
    searchable = state.file_search is not None
    system = prompt.system_text(run, recalled, file_search=searchable)
    turns = prompt.truncate(
        prompt.conversation(thread_messages, own),
        system,
        run.truncation_strategy or {},
        run.max_prompt_tokens,
    )
    state.request = None
    if turns is not None:
        state.request = prompt.chat_request(run, system, turns, file_search=searchable)
    return state


def _recall(run: Run, messages: list[Message]) -> list[prompt.Recalled]:
    """The project's most useful patterns for the thread's last user message (as /v1/recall)."""
    from memory.operations import recall

    question = next((m.text() for m in reversed(messages) if m.role == "user" and m.text()), "")
    if not question.strip():
        return []
    try:
        result = recall(
            project=run.project,
            data={
                "task": question[:20_000],
                "limit": prompt.MEMORY_LIMIT,
                "min_similarity": RECALL_MIN_SIMILARITY,
            },
        )
    except DependencyUnavailable as exc:  # memory is a help, not a precondition of the run
        logger.warning("run %s: recall failed, answering without memory: %s", run.public_id, exc)
        return []
    return [
        prompt.Recalled(match.pattern_id, match.task, match.code, match.score)
        for match in result.matches
    ]


@audited
@transaction.atomic
def open_message(*, state: RunState, actor: Any) -> RunState:
    """The message_creation step and the (empty, in progress) message it writes."""
    run = state.run
    message = Message.objects.create(
        project_id=run.project_id,
        thread_id=run.thread_id,
        public_id=ids.new_id(ids.MESSAGE),
        role="assistant",
        content=[],
        status=MessageStatus.IN_PROGRESS,
        assistant_ref=run.assistant_ref,
        run=run,
        run_ref=run.public_id,
    )
    state.message = message
    state.message_step = RunStep.objects.create(
        project_id=run.project_id,
        run=run,
        public_id=ids.new_id(ids.STEP),
        type=StepType.MESSAGE_CREATION,
        step_details={
            "type": "message_creation",
            "message_creation": {"message_id": message.public_id},
        },
    )
    return state


@audited
@transaction.atomic
def close_message(
    *,
    state: RunState,
    text: str,
    actor: Any,
    cut_short: bool = False,
    interrupted: str | None = None,
) -> RunState:
    """Store the message's text (with its citations) and complete its step.

    interrupted ("run_cancelled", "run_failed") keeps what was written as an incomplete
    message and leaves the step for the run's end to settle.
    """
    message, step = state.message, state.message_step
    assert message is not None and step is not None
    now = timezone.now()
    annotations = prompt.citations(text, state.hits)
    message.content = [{"type": "text", "text": {"value": text, "annotations": annotations}}]
    if interrupted is None and run_status(state.run.pk) == RunStatus.CANCELLING:
        interrupted = "run_cancelled"
    if cut_short or interrupted:
        message.status = MessageStatus.INCOMPLETE
        message.incomplete_details = {"reason": interrupted or "max_tokens"}
        message.incomplete_at = now
    else:
        message.status = MessageStatus.COMPLETED
        message.completed_at = now
    message.save()
    if interrupted:
        return state
    step.status = StepStatus.COMPLETED
    step.completed_at = now
    step.usage = _usage_body(state.usage)
    step.save()
    return state


@audited
@transaction.atomic
def open_tool_step(*, state: RunState, actor: Any) -> RunState:
    """The tool_calls step the model's calls go in."""
    run = state.run
    state.tool_step = RunStep.objects.create(
        project_id=run.project_id,
        run=run,
        public_id=ids.new_id(ids.STEP),
        type=StepType.TOOL_CALLS,
        step_details={"type": "tool_calls", "tool_calls": []},
    )
    return state


def new_call_id() -> str:
    """A tool call id as the Assistants API gives them."""
    return ids.new_id(ids.CALL)


def file_search(state: RunState, query: str) -> list[dict[str, Any]]:
    """Search the run's vector stores; each result numbered for citation (read-only)."""
    options = state.file_search or {}
    ranking = options.get("ranking_options") or {}
    found = search_stores(
        state.run.project,
        state.store_ids,
        query,
        limit=int(options.get("max_num_results") or 20),
        threshold=float(ranking.get("score_threshold") or 0.0),
    )
    start = len(state.hits)
    results = [
        {
            "index": start + number,
            "file_id": hit.file_id,
            "file_name": hit.filename,
            "score": hit.score,
            "content": [{"type": "text", "text": hit.text}],
        }
        for number, hit in enumerate(found)
    ]
    state.hits.extend(results)
    return results


@audited
@transaction.atomic
def record_tool_calls(*, state: RunState, calls: list[dict[str, Any]], actor: Any) -> Run:
    """Store the model's tool calls; function calls await the client (requires_action).

    calls are step_details entries: file_search ones carry their results already.
    """
    step, run = state.tool_step, _locked(state.run.pk)
    assert step is not None and run is not None
    step.step_details = {"type": "tool_calls", "tool_calls": calls}
    pending = [call for call in calls if call["type"] == "function"]
    if run.status == RunStatus.CANCELLING:
        step.status = StepStatus.CANCELLED
        step.cancelled_at = timezone.now()
        step.save()
        settle(run, RunStatus.CANCELLED)
        return run
    if not pending:
        step.status = StepStatus.COMPLETED
        step.completed_at = timezone.now()
        step.usage = _usage_body(state.usage)
        step.save()
        return run
    step.save()
    run.required_action = {
        "type": "submit_tool_outputs",
        "submit_tool_outputs": {
            "tool_calls": [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {
                        "name": call["function"]["name"],
                        "arguments": call["function"]["arguments"],
                    },
                }
                for call in pending
            ]
        },
    }
    run.expires_at = timezone.now() + RUN_TTL
    fields = _now_fields(run, RunStatus.REQUIRES_ACTION)
    run.usage = _usage_body(state.usage, run.usage)
    run.save(update_fields=[*fields, "required_action", "expires_at", "usage"])
    state.run = run
    return run


def _usage_body(usage: Usage, earlier: dict[str, Any] | None = None) -> dict[str, int]:
    earlier = earlier or {}
    prompt_tokens = usage.prompt_tokens + int(earlier.get("prompt_tokens", 0))
    completion = usage.completion_tokens + int(earlier.get("completion_tokens", 0))
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
    }


def settle(run: Run, status: RunStatus, **values: Any) -> None:
    """Finalize a locked run (and the steps and messages it left open)."""
    now = timezone.now()
    for name, value in values.items():
        setattr(run, name, value)
    fields = _now_fields(run, status)
    run.required_action = None
    run.save(update_fields=[*fields, "required_action", *values])
    step_status = {
        RunStatus.CANCELLED: StepStatus.CANCELLED,
        RunStatus.EXPIRED: StepStatus.EXPIRED,
    }.get(status, StepStatus.FAILED)
    for step in RunStep.objects.filter(run=run, status=StepStatus.IN_PROGRESS):
        step.status = step_status
        if step_status == StepStatus.CANCELLED:
            step.cancelled_at = now
        else:
            step.failed_at = now
        step.last_error = values.get("last_error") if step_status == StepStatus.FAILED else None
        step.save()
    for message in Message.objects.filter(run=run, status=MessageStatus.IN_PROGRESS):
        message.status = MessageStatus.INCOMPLETE
        message.incomplete_at = now
        message.incomplete_details = {"reason": "run_" + str(status)}
        message.save()


@audited
@transaction.atomic
def finish_run(
    *,
    state: RunState,
    actor: Any,
    status: RunStatus = RunStatus.COMPLETED,
    last_error: dict[str, Any] | None = None,
    incomplete_reason: str | None = None,
) -> Run:
    """End the run (as cancelled instead, when cancellation was asked for meanwhile).

    A streamed run that completes queues the job that learns it: the stream has ended by then,
    and a worker does the learning and the judging.
    """
    run = _locked(state.run.pk)
    assert run is not None
    if run.status not in (RunStatus.IN_PROGRESS, RunStatus.CANCELLING):
        state.run = run
        return run  # finished elsewhere (expired, or a second attempt got there first)
    if run.status == RunStatus.CANCELLING:
        status = RunStatus.CANCELLED
    values: dict[str, Any] = {"usage": _usage_body(state.usage, run.usage)}
    if status == RunStatus.FAILED:
        values["last_error"] = last_error
    if status == RunStatus.INCOMPLETE:
        values["incomplete_details"] = {"reason": incomplete_reason}
    settle(run, status, **values)
    if status == RunStatus.COMPLETED and run.streamed and run.job_id is None:
        from jobs.services import submit_job

        run.job = submit_job(
            project=run.project, kind=RUN_KIND, params={"run": run.pk}, actor=actor
        )
        run.save(update_fields=["job"])
    state.run = run
    return run


def run_status(run_pk: int) -> str | None:
    """The run's status now (the engine's cancellation check)."""
    return Run.objects.filter(pk=run_pk).values_list("status", flat=True).first()
