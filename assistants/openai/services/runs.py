"""Starting, answering and cancelling runs; the thread's run lock.

A thread has at most one active run (queued, in progress, waiting for tool outputs or being
cancelled): the thread's row is locked while a run is created or a message added, and a
partial unique index (run_one_active_per_thread) holds the rule even against a race. A run that
is not streamed is executed by a durable job (RUN_KIND); a streamed one by the request itself.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from assistants.choices import RunStatus, StepStatus, StepType
from assistants.models import Assistant, Message, Run, RunStep, Thread
from assistants.openai import ids
from assistants.openai.services.execution import RUN_KIND, RUN_TTL, prepare
from assistants.openai.services.lifecycle import settle
from assistants.openai.services.lookup import find, run_start
from assistants.openai.services.objects import append_message, create_thread, resolve_resources
from engramia_site.errors import InvalidInput, NotFound
from engramia_site.request_context import audited
from jobs.models import Job
from jobs.services import cancel_job, submit_job
from tenants.models import Project
from tenants.statements import insert_audited

FROM_ASSISTANT = ("temperature", "top_p", "response_format", "reasoning_effort")


def _stuck(run: Run) -> tuple[RunStatus, dict[str, Any]] | None:
    """How an active run that can no longer progress ends, or None while it still can.

    Tool outputs that never came, and a stream whose server went away, expire with the run;
    a run whose job ended without finishing it fails with the job's reason.
    """
    late = run.expires_at is not None and run.expires_at < timezone.now()
    if run.status == RunStatus.REQUIRES_ACTION or run.job_id is None:
        return (RunStatus.EXPIRED, {}) if late else None
    job = Job.objects.filter(pk=run.job_id).only("status", "error").first()
    if job is None or job.is_finished:
        reason = (job.error if job is not None else "") or "its job ended without finishing it"
        error = {"code": "server_error", "message": f"The run could not be executed: {reason}"}
        return RunStatus.FAILED, {"last_error": error}
    return None


def expire_if_due(run: Run) -> Run:
    """End an active run that can no longer progress (see _stuck); returns it as it is now."""
    if not run.is_active or _stuck(run) is None:
        return run
    with transaction.atomic():
        locked = Run.objects.select_for_update(of=("self",)).filter(pk=run.pk).first()
        ending = _stuck(locked) if locked is not None and locked.is_active else None
        if locked is None or ending is None:
            return run
        settle(locked, ending[0], **ending[1])
    locked.thread = run.thread
    return locked


def _store_ids(*resources: dict[str, Any] | None) -> list[str]:
    found: list[str] = []
    for resource in resources:
        found.extend(((resource or {}).get("file_search") or {}).get("vector_store_ids") or [])
    return list(dict.fromkeys(found))


def _check_tool_choice(tools: list[Any], choice: Any) -> None:
    if not isinstance(choice, dict):
        return
    if choice["type"] == "file_search":
        if not any(tool["type"] == "file_search" for tool in tools):
            raise InvalidInput("The run has no file_search tool to force.", field="tool_choice")
        return
    name = choice["function"]["name"]
    if not any(t["type"] == "function" and t["function"]["name"] == name for t in tools):
        raise InvalidInput(f"The run has no function named {name}.", field="tool_choice")


def _run_values(assistant: Assistant, values: dict[str, Any]) -> dict[str, Any]:
    """The run's parameters: what the request gives, else what the assistant has."""
    tools = values.get("tools")
    run: dict[str, Any] = {
        "model": values.get("model") or assistant.model,
        "instructions": values["instructions"]
        if values.get("instructions") is not None
        else assistant.instructions or "",
        "additional_instructions": values.get("additional_instructions") or "",
        "tools": tools if tools is not None else assistant.tools or [],
        "metadata": values.get("metadata") or {},
        "max_prompt_tokens": values.get("max_prompt_tokens"),
        "max_completion_tokens": values.get("max_completion_tokens"),
        "truncation_strategy": values.get("truncation_strategy")
        or {"type": "auto", "last_messages": None},
        "tool_choice": values.get("tool_choice") or "auto",
        "parallel_tool_calls": values.get("parallel_tool_calls") is not False,
    }
    for name in FROM_ASSISTANT:
        given = values.get(name)
        run[name] = given if given is not None else getattr(assistant, name)
    if run["response_format"] == "auto":
        run["response_format"] = None
    _check_tool_choice(run["tools"], run["tool_choice"])
    return run


def _refuse_if_active(thread: Thread, holder: Run | None) -> None:
    """InvalidInput if the thread's active run (holder, read with the thread's row lock held) is
    still active."""
    if holder is not None and expire_if_due(holder).is_active:
        raise InvalidInput(
            f"Thread {thread.public_id} already has an active run {holder.public_id}."
        )


@audited
@transaction.atomic
def start_run(
    *, project: Project, thread_id: str, values: dict[str, Any], stream: bool, actor: Any
) -> Run:
    """Queue a run of an assistant on the project's thread with this id (a job executes it
    unless it is streamed).

    The thread (locked), its active run, the assistant and the thread's messages are read in
    one round trip (lookup.run_start). A streamed run starts at once: it is stored in progress
    and prepared (`run.prepared`, memory recalled) in this transaction, and its stream calls
    the model.
    """
    # A streamed run is prepared now, from the thread's messages (unless more are added first).
    with_messages = stream and not values.get("additional_messages")
    start = run_start(project, thread_id, values["assistant_id"], with_messages=with_messages)
    _refuse_if_active(start.thread, start.active)
    if start.assistant is None:
        raise NotFound(f"No assistant found with id '{values['assistant_id']}'.")
    return _create_run(
        thread=start.thread,
        assistant=start.assistant,
        messages=start.messages,
        values=values,
        stream=stream,
        actor=actor,
    )


def _create_run(
    *,
    thread: Thread,
    assistant: Assistant,
    messages: list[Message] | None,
    values: dict[str, Any],
    stream: bool,
    actor: Any,
) -> Run:
    """start_run's body, in the caller's transaction: the thread's row is locked (or the thread
    was made in it) and no run is active. messages: the thread's, if the caller read them."""
    for index, message in enumerate(values.get("additional_messages") or []):
        append_message(  # the thread's row is locked and no run is active
            thread=thread, values=message, actor=actor, field=f"additional_messages.{index}"
        )
    # After the lock and the reads: the run's creation bounds the messages it sees later too.
    now = timezone.now()
    run = Run(
        project=thread.project,
        thread=thread,
        assistant=assistant,
        assistant_ref=assistant.public_id,
        public_id=ids.new_id(ids.RUN),
        streamed=stream,
        status=RunStatus.IN_PROGRESS if stream else RunStatus.QUEUED,
        started_at=now if stream else None,
        created_at=now,
        expires_at=now + RUN_TTL,
        tool_resources={
            "file_search": {
                "vector_store_ids": _store_ids(assistant.tool_resources, thread.tool_resources)
            }
        },
        **_run_values(assistant, values),
    )
    if stream:  # prepared first, so the run is stored once, with what it recalled
        run.thread = thread
        run.prepared = prepare(run, fresh=True, messages=messages)  # type: ignore[attr-defined]
        insert_audited(run)  # its audit entry in the same round trip
        return run
    run.save()
    run.job = submit_job(project=thread.project, kind=RUN_KIND, params={"run": run.pk}, actor=actor)
    run.save(update_fields=["job"])
    return run


def _prepare(run: Run, *, fresh: bool) -> None:
    """Prepare a streamed run's model call now (see start_run)."""
    state = prepare(run, fresh=fresh)
    # Bookkeeping kept out of the audit log (like usage): no audited save for it.
    Run.objects.filter(pk=run.pk).update(recalled_pattern_ids=run.recalled_pattern_ids)
    run.prepared = state  # type: ignore[attr-defined]


@audited
@transaction.atomic
def create_thread_and_run(
    *, project: Project, values: dict[str, Any], stream: bool, actor: Any
) -> Run:
    """A new thread (from `thread`) and its first run."""
    thread_values = dict(values.get("thread") or {})
    thread = create_thread(project=project, values=thread_values, actor=actor)
    if values.get("tool_resources"):
        # Run-level resources join the thread's (OpenAI's create-and-run does the same).
        resources = resolve_resources(
            project, values["tool_resources"], actor=actor, field="tool_resources"
        )
        merged = _store_ids(thread.tool_resources, resources)
        thread.tool_resources = {"file_search": {"vector_store_ids": merged}}
        thread.save(update_fields=["tool_resources"])
    assistant = find(Assistant, project, values["assistant_id"])
    # A thread made in this transaction has no run yet and no other transaction sees it.
    run = _create_run(
        thread=thread, assistant=assistant, messages=None, values=values, stream=stream, actor=actor
    )
    run.thread = thread
    return run


@audited
@transaction.atomic
def cancel_run(*, run: Run, actor: Any) -> Run:
    """Cancel a run: at once when it waits, or at its next step when it is being executed."""
    locked = Run.objects.select_for_update(of=("self",)).select_related("job").get(pk=run.pk)
    if locked.status in (RunStatus.QUEUED, RunStatus.REQUIRES_ACTION):
        settle(locked, RunStatus.CANCELLED)
        if locked.job is not None and not locked.job.is_finished:
            cancel_job(locked.job, actor=actor)
    elif locked.status == RunStatus.IN_PROGRESS:
        locked.status = RunStatus.CANCELLING
        locked.save(update_fields=["status"])
    elif locked.status != RunStatus.CANCELLING:
        raise InvalidInput(f"Cannot cancel run with status '{locked.status}'.")
    locked.thread = run.thread
    return locked


def _tool_step(run: Run) -> RunStep:
    step = (
        RunStep.objects.select_for_update()
        .filter(run=run, type=StepType.TOOL_CALLS, status=StepStatus.IN_PROGRESS)
        .order_by("-created_at", "-id")
        .first()
    )
    if step is None:
        raise InvalidInput("The run has no tool calls waiting for outputs.")
    return step


def _check_outputs(run: Run, outputs: list[dict[str, Any]]) -> dict[str, str]:
    pending = [
        call["id"] for call in (run.required_action or {})["submit_tool_outputs"]["tool_calls"]
    ]
    given: dict[str, str] = {}
    for index, output in enumerate(outputs):
        call_id = output["tool_call_id"]
        if call_id not in pending:
            raise InvalidInput(
                f"No tool call with id '{call_id}' awaits an output.",
                field=f"tool_outputs.{index}.tool_call_id",
            )
        given[call_id] = output["output"]
    missing = [call_id for call_id in pending if call_id not in given]
    if missing:
        raise InvalidInput(
            f"Expected tool outputs for call_ids {pending}, got {list(given)}; missing: {missing}.",
            field="tool_outputs",
        )
    return given


@audited
@transaction.atomic
def submit_tool_outputs(
    *, run: Run, outputs: list[dict[str, Any]], stream: bool, actor: Any
) -> tuple[Run, RunStep]:
    """Answer every pending tool call; the run is queued again (a job resumes it unless streamed).

    Returns the run and the tool step the outputs completed.
    """
    expire_if_due(run)
    locked = Run.objects.select_for_update(of=("self",)).select_related("project").get(pk=run.pk)
    if locked.status != RunStatus.REQUIRES_ACTION:
        raise InvalidInput(f'Runs in status "{locked.status}" do not accept tool outputs.')
    given = _check_outputs(locked, outputs)
    step = _tool_step(locked)
    details = step.step_details or {}
    for call in details.get("tool_calls") or []:
        if call.get("type") == "function" and call["id"] in given:
            call["function"]["output"] = given[call["id"]]
    step.step_details = details
    step.status = StepStatus.COMPLETED
    step.completed_at = timezone.now()
    step.save()
    # Streamed, the run goes on in this request (prepared now); otherwise a job resumes it.
    locked.status = RunStatus.IN_PROGRESS if stream else RunStatus.QUEUED
    locked.required_action = None
    locked.streamed = stream
    locked.expires_at = timezone.now() + RUN_TTL
    locked.job = None  # the job that asked for the outputs is done
    locked.save(update_fields=["status", "required_action", "streamed", "expires_at", "job"])
    if stream:
        locked.thread = run.thread
        _prepare(locked, fresh=False)
    else:
        locked.job = submit_job(
            project=locked.project, kind=RUN_KIND, params={"run": locked.pk}, actor=actor
        )
        locked.save(update_fields=["job"])
    locked.thread = run.thread
    return locked, step


@audited
@transaction.atomic
def hand_over(*, run_pk: int, actor: Any) -> Run | None:
    """A streamed run whose client went away: a job finishes it from its last stored state."""
    run = Run.objects.select_for_update(of=("self",)).filter(pk=run_pk).first()
    executing = (RunStatus.QUEUED, RunStatus.IN_PROGRESS, RunStatus.CANCELLING)
    if run is None or run.status not in executing or run.job_id is not None:
        return run
    run.job = submit_job(project=run.project, kind=RUN_KIND, params={"run": run.pk}, actor=actor)
    run.save(update_fields=["job"])
    return run
