"""The database side of starting a run: its state, the model call it makes, recalled memory.

Each write is one short transaction on the run's row, locked, checking the state it expects;
the engine (assistants.openai.engine) calls these between model calls and never holds a
transaction open while the model answers. What a run writes as it goes is in
assistants.openai.services.steps.
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
from assistants.openai import prompt
from assistants.openai.services.lifecycle import locked_run, settle, stamp
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


@audited
@transaction.atomic
def begin_run(*, run_pk: int, actor: Any) -> RunState | None:
    """Move a queued run in progress and gather its model call; None when nothing is to do.

    A run found in progress was interrupted (its worker died, its client left): what that
    attempt left unfinished is dropped and the round starts again.
    """
    run = locked_run(run_pk)
    if run is None or run.status not in (RunStatus.QUEUED, RunStatus.IN_PROGRESS):
        if run is not None and run.status == RunStatus.CANCELLING:
            settle(run, RunStatus.CANCELLED)
        return None
    # A run never started has no steps or messages of its own: nothing more to read.
    fresh = run.started_at is None
    if run.status == RunStatus.IN_PROGRESS:
        _drop_unfinished(run)
    state = prepare(run, fresh=fresh)
    fields = stamp(run, RunStatus.IN_PROGRESS)
    run.started_at = run.started_at or timezone.now()
    run.save(update_fields=[*fields, "started_at", "recalled_pattern_ids"])
    return state


def prepare(run: Run, *, fresh: bool, messages: list[Message] | None = None) -> RunState:
    """A run's state and first model call, read with its thread (the caller holds its row).

    A streamed run is prepared in the request that starts it, in the same transaction: its
    stream then goes straight to the model. messages: the thread's completed messages up to
    the run's creation, when the caller read them already.
    """
    state = RunState(run=run, thread_id=run.thread.public_id)
    state.file_search = prompt.file_search_options(run.tools or [])
    state.store_ids = list(
        ((run.tool_resources or {}).get("file_search") or {}).get("vector_store_ids") or []
    )
    state.hits = [] if fresh else _earlier_hits(run)
    return _with_request(state, own_items=not fresh, messages=messages)


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


def _with_request(
    state: RunState, *, own_items: bool = True, messages: list[Message] | None = None
) -> RunState:
    """The run's next model call: its thread, its own rounds so far, recalled memory.

    state.request stays None when not even the last message fits max_prompt_tokens.
    """
    run = state.run
    thread_messages = _thread_messages(run) if messages is None else messages
    own: list[Any] = []
    if own_items:
        own += list(Message.objects.filter(run=run, status=MessageStatus.COMPLETED))
        own += list(
            RunStep.objects.filter(run=run, type=StepType.TOOL_CALLS, status=StepStatus.COMPLETED)
        )
        own.sort(key=lambda item: (item.created_at, item.pk))
    if state.recalled is None:
        state.recalled = _recall(run, thread_messages)
        run.recalled_pattern_ids = [item.pattern_id for item in state.recalled]
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


def _thread_messages(run: Run) -> list[Message]:
    """The thread's completed messages up to the run's creation (less its own), oldest first."""
    earlier = Message.objects.filter(
        thread_id=run.thread_id, status=MessageStatus.COMPLETED, created_at__lte=run.created_at
    )
    if run.pk is not None:  # a run prepared before it is stored has no messages yet
        earlier = earlier.exclude(run_id=run.pk)
    return list(earlier.order_by("created_at", "id"))


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


def cancelling_runs(run_pks: list[int]) -> list[int]:
    """Which of these runs are being cancelled (the engine's check for its open streams)."""
    return list(
        Run.objects.filter(pk__in=run_pks, status=RunStatus.CANCELLING).values_list("pk", flat=True)
    )
