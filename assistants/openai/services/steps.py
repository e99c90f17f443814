"""What a run writes as it goes: its messages and steps, its tool calls, and its end.

A step and the message it writes are made in memory when the model starts answering (the
stream shows them at once) and stored when the answer is done, with their final status, in the
same transaction as the run's end: a run that is interrupted in between has nothing half-written
to clean up, and an answer costs the database two short transactions (begin, end).
"""

from __future__ import annotations

import copy
from typing import Any

from django.db import transaction
from django.utils import timezone

from assistants.choices import MessageStatus, RunStatus, StepStatus, StepType
from assistants.models import Message, Run, RunStep
from assistants.openai import ids, prompt
from assistants.openai.services.answer import store_answer
from assistants.openai.services.execution import RUN_KIND, RUN_TTL, RunState
from assistants.openai.services.files import search_stores
from assistants.openai.services.lifecycle import (
    end_step,
    locked_run,
    settle,
    stamp,
    usage_body,
)
from engramia_site.request_context import audited
from jobs.models import Job
from jobs.services import hold, new_job, queue_after_commit


def new_message(state: RunState) -> RunState:
    """The message_creation step and its message, in progress (stored when they end)."""
    run, now = state.run, timezone.now()
    message = Message(
        project=run.project,
        thread_id=run.thread_id,
        public_id=ids.new_id(ids.MESSAGE),
        created_at=now,
        role="assistant",
        content=[],
        status=MessageStatus.IN_PROGRESS,
        assistant_ref=run.assistant_ref,
        run=run,
        run_ref=run.public_id,
    )
    state.message = message
    state.message_step = RunStep(
        project=run.project,
        run=run,
        public_id=ids.new_id(ids.STEP),
        created_at=now,
        type=StepType.MESSAGE_CREATION,
        step_details={
            "type": "message_creation",
            "message_creation": {"message_id": message.public_id},
        },
    )
    return state


def new_tool_step(state: RunState) -> RunState:
    """The tool_calls step the model's calls go in (stored with them)."""
    run = state.run
    state.tool_step = RunStep(
        project=run.project,
        run=run,
        public_id=ids.new_id(ids.STEP),
        created_at=timezone.now(),
        type=StepType.TOOL_CALLS,
        step_details={"type": "tool_calls", "tool_calls": []},
    )
    return state


def new_call_id() -> str:
    """A tool call id as the Assistants API gives them."""
    return ids.new_id(ids.CALL)


def _store_message(
    state: RunState, text: str, *, incomplete: str | None, step_end: RunStatus | None
) -> None:
    """Store the open message with its text, citations and status, and its step."""
    _finish_message(state, text, incomplete=incomplete, step_end=step_end, now=timezone.now())
    assert state.message is not None and state.message_step is not None
    state.message.save()
    state.message_step.save()


def _finish_message(
    state: RunState, text: str, *, incomplete: str | None, step_end: RunStatus | None, now: Any
) -> None:
    """Give the open message its text, citations and status, and end its step (not saved).

    Every end field is set either way: a first attempt (the one-statement path that found the
    run no longer in progress) must leave nothing behind.
    """
    message, step = state.message, state.message_step
    assert message is not None and step is not None
    annotations = prompt.citations(text, state.hits)
    message.content = [{"type": "text", "text": {"value": text, "annotations": annotations}}]
    message.status = MessageStatus.INCOMPLETE if incomplete else MessageStatus.COMPLETED
    message.incomplete_details = {"reason": incomplete} if incomplete else None
    message.incomplete_at = now if incomplete else None
    message.completed_at = None if incomplete else now
    step.completed_at = step.usage = None
    if step_end is None:
        step.status = StepStatus.COMPLETED
        step.completed_at = now
        step.usage = usage_body(state.usage)
    else:
        end_step(step, step_end, None, now)


@audited
@transaction.atomic
def close_message(
    *, state: RunState, text: str, actor: Any, interrupted: RunStatus | None = None
) -> RunState:
    """End the open message: complete (more follows, e.g. tool calls), or interrupted."""
    reason = f"run_{interrupted}" if interrupted else None
    if reason is None and Run.objects.filter(pk=state.run.pk, status=RunStatus.CANCELLING).exists():
        reason, interrupted = "run_cancelled", RunStatus.CANCELLED
    _store_message(state, text, incomplete=reason, step_end=interrupted)
    return state


@audited
def complete_answer(
    *, state: RunState, text: str, cut_short: bool, actor: Any, held: list[Job] | None = None
) -> Run:
    """Store the answer and end the run: completed, incomplete (token budget) or cancelled.

    The common case, a run still plainly in progress, is one statement (services.answer);
    anything else is decided on the locked row. held: the learning job a streamed run gets
    is stored held (jobs.services.hold) and added to this list for the caller to queue once
    the client has its answer, instead of being queued at commit. It is added here, in the
    call, so that a caller cancelled while waiting for it still finds it.
    """
    ended = _answered(state, text, cut_short=cut_short, actor=actor, held=held)
    if ended is not None:
        return ended
    with transaction.atomic():
        return _complete_locked(state=state, text=text, cut_short=cut_short, actor=actor)


def _answered(
    state: RunState, text: str, *, cut_short: bool, actor: Any, held: list[Job] | None
) -> Run | None:
    """The answer stored and the run ended in one round trip; None if it was not in progress."""
    run, now = state.run, timezone.now()
    _finish_message(
        state, text, incomplete="max_tokens" if cut_short else None, step_end=None, now=now
    )
    status = RunStatus.INCOMPLETE if cut_short else RunStatus.COMPLETED
    ended = copy.copy(run)
    stamp(ended, status)
    ended.required_action = None
    ended.usage = usage_body(state.usage, run.usage)
    ended.incomplete_details = {"reason": "max_completion_tokens"} if cut_short else None
    job = None
    if status == RunStatus.COMPLETED and run.streamed and run.job_id is None:
        # The stream has ended by then: a worker does the learning and the judging.
        job = new_job(project=run.project, kind=RUN_KIND, params={"run": run.pk}, actor=actor)
        if held is not None:
            hold(job)
    assert state.message is not None and state.message_step is not None
    if not store_answer(
        run=run, ended=ended, message=state.message, step=state.message_step, job=job, when=now
    ):
        return None
    if job is not None and job.pk is not None:
        ended.job = job
        if held is not None:
            held.append(job)
        else:
            queue_after_commit(job)
    state.run = ended
    return ended


def _complete_locked(*, state: RunState, text: str, cut_short: bool, actor: Any) -> Run:
    run = locked_run(state.run.pk)
    assert run is not None
    if run.status == RunStatus.CANCELLING:
        _store_message(state, text, incomplete="run_cancelled", step_end=RunStatus.CANCELLED)
        return _end(state, run, RunStatus.CANCELLED, actor=actor)
    if run.status != RunStatus.IN_PROGRESS:  # expired meanwhile: the answer came too late
        _store_message(state, text, incomplete=f"run_{run.status}", step_end=RunStatus.EXPIRED)
        state.run = run
        return run
    _store_message(state, text, incomplete="max_tokens" if cut_short else None, step_end=None)
    if cut_short:
        return _end(
            state, run, RunStatus.INCOMPLETE, actor=actor, incomplete_reason="max_completion_tokens"
        )
    return _end(state, run, RunStatus.COMPLETED, actor=actor)


def _end(
    state: RunState,
    run: Run,
    status: RunStatus,
    *,
    actor: Any,
    last_error: dict[str, Any] | None = None,
    incomplete_reason: str | None = None,
) -> Run:
    """Settle the locked run; a completed streamed run queues the job that learns it."""
    values: dict[str, Any] = {"usage": usage_body(state.usage, run.usage)}
    if status == RunStatus.FAILED:
        values["last_error"] = last_error
    if status == RunStatus.INCOMPLETE:
        values["incomplete_details"] = {"reason": incomplete_reason}
    if status == RunStatus.COMPLETED and run.streamed and run.job_id is None:
        from jobs.services import submit_job

        # The stream has ended by then: a worker does the learning and the judging.
        values["job"] = submit_job(
            project=run.project, kind=RUN_KIND, params={"run": run.pk}, actor=actor
        )
    settle(run, status, sweep=False, **values)
    state.run = run
    return run


@audited
@transaction.atomic
def finish_run(
    *,
    state: RunState,
    actor: Any,
    status: RunStatus,
    last_error: dict[str, Any] | None = None,
    incomplete_reason: str | None = None,
) -> Run:
    """End the run without an answer (failed, cancelled, prompt too long).

    The steps and message it had open are stored ended as the run is; cancellation asked for
    meanwhile wins over failure.
    """
    run = locked_run(state.run.pk)
    assert run is not None
    if run.status not in (RunStatus.IN_PROGRESS, RunStatus.CANCELLING):
        state.run = run
        return run  # finished elsewhere (expired, or another attempt got there first)
    if run.status == RunStatus.CANCELLING:
        status = RunStatus.CANCELLED
    now = timezone.now()
    for step in (state.message_step, state.tool_step):
        if step is not None and step.status == StepStatus.IN_PROGRESS:
            end_step(step, status, last_error, now)
            step.save()
    return _end(
        state,
        run,
        status,
        actor=actor,
        last_error=last_error,
        incomplete_reason=incomplete_reason,
    )


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
    step, run = state.tool_step, locked_run(state.run.pk)
    assert step is not None and run is not None
    step.step_details = {"type": "tool_calls", "tool_calls": calls}
    pending = [call for call in calls if call["type"] == "function"]
    if run.status == RunStatus.CANCELLING:
        end_step(step, RunStatus.CANCELLED, None, timezone.now())
        step.save()
        return _end(state, run, RunStatus.CANCELLED, actor=actor)
    if not pending:
        step.status = StepStatus.COMPLETED
        step.completed_at = timezone.now()
        step.usage = usage_body(state.usage)
        step.save()
        state.run = run
        return run
    step.save()  # in progress until the outputs come
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
    fields = stamp(run, RunStatus.REQUIRES_ACTION)
    run.usage = usage_body(state.usage, run.usage)
    run.save(update_fields=[*fields, "required_action", "expires_at", "usage"])
    state.run = run
    return run
