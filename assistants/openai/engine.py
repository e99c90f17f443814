"""The run engine: one run from queued to its end, as OpenAI's Assistants stream events.

`execute_run` is an async generator of (event, data) pairs in OpenAI's exact order
(`thread.run.in_progress`, `thread.run.step.created`, `thread.message.created`,
`thread.message.delta`…, then `thread.run.requires_action` or `.completed`). A streamed run
sends them to the client as they come; a job drives the same generator and drops them, calling
the model without streaming. Every state change goes through assistants.openai.services
.execution in its own short transaction, run on a thread (`in_thread`), so the event loop never
waits on the database while other streams are flowing.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection

from assistants.choices import RunStatus
from assistants.models import Message, RunStep
from assistants.openai import prompt
from assistants.openai.services import execution, steps
from assistants.openai.services.execution import RunState
from assistants.openai.shapes import message_shape, run_shape, step_shape
from engramia_site.errors import DependencyUnavailable
from jobs.models import Job
from memory.providers.chat import (
    ChatEvent,
    ChatProvider,
    ChatRequest,
    Finished,
    TextDelta,
    ToolArgumentsDelta,
    ToolCallStarted,
    Usage,
)

logger = logging.getLogger(__name__)

Event = tuple[str, dict[str, Any]]
T = TypeVar("T")
# file_search rounds a run may make before it must answer.
MAX_ROUNDS = 8
# How often a web process asks which of its open streamed runs are being cancelled.
CANCEL_CHECK_SECONDS = 1.0


async def in_thread(function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run database work off the event loop, on the stream's (or job's) own thread; a pooled
    connection goes back after each call."""
    return await sync_to_async(_borrowing, thread_sensitive=True)(function, *args, **kwargs)


def _borrowing(function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    try:
        return function(*args, **kwargs)
    finally:
        lend_connection_back()


def lend_connection_back() -> None:
    """Return a pooled connection between a run's database steps: an open stream (which may
    wait on the model for minutes) holds none while it waits.

    Without a pool (ENGRAMIA_DB_POOL_SIZE=0) the thread keeps its connection: reopening one
    would cost more than holding it.
    """
    if getattr(connection, "pool", None) is not None and not connection.in_atomic_block:
        connection.close()


class CancelWatch:
    """Which of an event loop's open streamed runs are being cancelled, for all of them at once.

    Each open stream used to ask for its own run's status once a second: with 50 streams that
    was 50 queries a second, each on a thread with a pooled connection, competing with the
    rest of the API. A watch asks once a second for every run it watches, and only while some
    are watched; a stream checks the last answer for free between tokens.
    """

    def __init__(self) -> None:
        self.watched: dict[int, int] = {}  # run pk -> streams watching it
        self.cancelling: frozenset[int] = frozenset()
        self.polling: asyncio.Task[None] | None = None

    def watch(self, run_pk: int) -> None:
        """Start watching a run (call on the watch's event loop)."""
        self.watched[run_pk] = self.watched.get(run_pk, 0) + 1
        if self.polling is None or self.polling.done():
            # A context of its own: not the first stream's request (its id, its actor).
            self.polling = asyncio.get_running_loop().create_task(
                self._poll(), context=contextvars.Context()
            )
            # A finished task keeps its loop alive: let go of it, so a short-lived loop's watch
            # (one per streamed run under a WSGI server) is freed with the loop.
            self.polling.add_done_callback(self._stopped)

    def _stopped(self, task: asyncio.Task[None]) -> None:
        if self.polling is task:
            self.polling = None

    def unwatch(self, run_pk: int) -> None:
        """Stop watching a run."""
        left = self.watched.get(run_pk, 0) - 1
        if left > 0:
            self.watched[run_pk] = left
        else:
            self.watched.pop(run_pk, None)

    def is_cancelling(self, run_pk: int) -> bool:
        """Whether the last check found the run being cancelled."""
        return run_pk in self.cancelling

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(CANCEL_CHECK_SECONDS)
            runs = list(self.watched)
            if not runs:  # every stream ended meanwhile: the next watch() starts a new task
                return
            try:
                found = await sync_to_async(_checked, thread_sensitive=False)(runs)
            except Exception:  # a stream must not fail for a missed check; the next one retries
                logger.warning("could not check %d streamed runs for cancellation", len(runs))
                continue
            self.cancelling = frozenset(found)


def _checked(runs: list[int]) -> list[int]:
    """The watch's query, on a thread of the loop's executor that no request cycle cleans up:
    a connection past its age or broken (a database restart) is replaced first, and a pooled
    one goes back after."""
    close_old_connections()
    return _borrowing(execution.cancelling_runs, runs)


_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CancelWatch] = (
    weakref.WeakKeyDictionary()
)


def cancel_watch() -> CancelWatch:
    """The running event loop's watch (a web worker's loop serves all its streams)."""
    loop = asyncio.get_running_loop()
    watch = _watches.get(loop)
    if watch is None:
        watch = _watches[loop] = CancelWatch()
    return watch


@dataclass
class _Call:
    id: str
    name: str
    kind: str  # "function" or "file_search"
    arguments: list[str] = field(default_factory=list)


@dataclass
class _Round:
    text: list[str] = field(default_factory=list)
    calls: dict[int, _Call] = field(default_factory=dict)
    finish: str = "stop"
    usage: Usage = field(default_factory=Usage)
    cancelled: bool = False


class RunEngine:
    """Executes one run; `events()` yields what happened, in OpenAI's order."""

    def __init__(
        self,
        run_pk: int,
        *,
        actor: Any,
        streaming: bool,
        prepared: RunState | None = None,
        held: list[Job] | None = None,
    ) -> None:
        self.run_pk = run_pk
        self.actor = actor
        self.streaming = streaming
        self.state: RunState | None = None
        self.prepared = prepared  # begun already by the request that started the run
        self.written: list[str] = []  # the open message's text so far
        # Given: the learning job is stored held and put here for the caller to queue.
        self.held = held

    async def events(self) -> AsyncIterator[Event]:
        """Begin the run and go round by round until it waits, ends or fails."""
        state = self.prepared or await in_thread(
            execution.begin_run, run_pk=self.run_pk, actor=self.actor
        )
        if state is None:
            return
        self.state = state
        yield self._run_event()
        if state.request is None:
            run = await in_thread(
                steps.finish_run,
                state=state,
                actor=self.actor,
                status=RunStatus.INCOMPLETE,
                incomplete_reason="max_prompt_tokens",
            )
            yield self._run_event(run.status)
            return
        try:
            provider = self._provider()  # no database: the project is loaded already
            for _ in range(MAX_ROUNDS):
                async for event in self._round(provider):
                    yield event
                if state.request is None:  # the round ended the run, or it awaits tool outputs
                    return
            async for event in self._fail("The run made too many file_search rounds."):
                yield event
        except DependencyUnavailable as exc:
            async for event in self._fail(exc.public_message, _error_code(exc)):
                yield event
        except Exception:
            logger.exception("run %s failed on the server", state.run.public_id)
            async for event in self._fail("The run failed on the server; see its log."):
                yield event

    def _provider(self) -> ChatProvider:
        from memory.services.evaluations import chat_for

        assert self.state is not None
        return chat_for(self.state.run.project)

    def _run_event(self, status: str | None = None) -> Event:
        assert self.state is not None
        run = self.state.run
        return f"thread.run.{status or run.status}", run_shape(run, self.state.thread_id)

    def _step_event(self, step: RunStep, status: str | None = None) -> Event:
        assert self.state is not None
        shape = step_shape(step, self.state.run, self.state.thread_id)
        return f"thread.run.step.{status or step.status}", shape

    def _message_event(self, message: Message, status: str | None = None) -> Event:
        assert self.state is not None
        return f"thread.message.{status or message.status}", message_shape(
            message, self.state.thread_id
        )

    async def _llm_events(
        self, provider: ChatProvider, request: ChatRequest
    ) -> AsyncGenerator[ChatEvent, None]:
        if self.streaming:
            async for event in provider.stream(request):
                yield event
            return
        result = await provider.complete(request)
        if result.text:
            yield TextDelta(result.text)
        for index, call in enumerate(result.tool_calls):
            yield ToolCallStarted(index, call.id, call.name)
            yield ToolArgumentsDelta(index, call.arguments)
        yield Finished(result)

    async def _round(self, provider: ChatProvider) -> AsyncIterator[Event]:
        """One model call: stream its text and tool calls, then act on how it ended."""
        state = self.state
        assert state is not None and state.request is not None
        current = _Round()
        answer = self._llm_events(provider, state.request)
        watch = cancel_watch() if self.streaming else None
        if watch is not None:
            watch.watch(self.run_pk)
        try:
            async for chat_event in answer:
                async for event in self._take(chat_event, current):
                    yield event
                if watch is not None and watch.is_cancelling(self.run_pk):
                    current.cancelled = True
                    break
        finally:
            if watch is not None:
                watch.unwatch(self.run_pk)
            await answer.aclose()  # a cancelled run stops the model's stream too
        state.usage = Usage(
            state.usage.prompt_tokens + current.usage.prompt_tokens,
            state.usage.completion_tokens + current.usage.completion_tokens,
        )
        if current.cancelled:
            await self._keep_written(RunStatus.CANCELLED)
            async for event in self._end(RunStatus.CANCELLED):
                yield event
        elif current.calls and current.finish != "length":
            async for event in self._tool_calls(current):
                yield event
        else:
            async for event in self._answer(current):
                yield event

    async def _take(self, chat_event: ChatEvent, current: _Round) -> AsyncIterator[Event]:
        """Turn one of the model's events into the run's."""
        state = self.state
        assert state is not None
        if isinstance(chat_event, TextDelta) and chat_event.text:
            if state.message is None:
                async for event in self._open_message():
                    yield event
            assert state.message is not None
            part: dict[str, Any] = {"index": 0, "type": "text", "text": {"value": chat_event.text}}
            if not current.text:
                part["text"]["annotations"] = []
            current.text.append(chat_event.text)
            self.written.append(chat_event.text)
            delta = {"id": state.message.public_id, "object": "thread.message.delta"}
            yield "thread.message.delta", {**delta, "delta": {"content": [part]}}
        elif isinstance(chat_event, ToolCallStarted):
            async for event in self._start_call(chat_event, current):
                yield event
        elif isinstance(chat_event, ToolArgumentsDelta) and chat_event.index in current.calls:
            call = current.calls[chat_event.index]
            call.arguments.append(chat_event.text)
            if call.kind == "function" and state.tool_step is not None:
                piece = {"index": chat_event.index, "type": "function"}
                piece["function"] = {"arguments": chat_event.text}
                yield self._step_delta(piece)
        elif isinstance(chat_event, Finished):
            current.finish = chat_event.result.finish
            current.usage = chat_event.result.usage

    def _step_delta(self, call: dict[str, Any]) -> Event:
        assert self.state is not None and self.state.tool_step is not None
        details = {"type": "tool_calls", "tool_calls": [call]}
        body = {"id": self.state.tool_step.public_id, "object": "thread.run.step.delta"}
        return "thread.run.step.delta", {**body, "delta": {"step_details": details}}

    async def _open_message(self) -> AsyncIterator[Event]:
        self.written = []
        assert self.state is not None
        state = steps.new_message(self.state)  # stored when it ends
        assert state.message is not None and state.message_step is not None
        yield self._step_event(state.message_step, "created")
        yield self._step_event(state.message_step, "in_progress")
        yield self._message_event(state.message, "created")
        yield self._message_event(state.message, "in_progress")

    async def _close_message(self, text: str) -> AsyncIterator[Event]:
        """End the open message because tool calls follow it."""
        state = self.state
        assert state is not None and state.message is not None
        await in_thread(steps.close_message, state=state, text=text, actor=self.actor)
        assert state.message is not None and state.message_step is not None
        yield self._message_event(state.message)
        yield self._step_event(state.message_step)
        state.message = state.message_step = None

    async def _start_call(self, started: ToolCallStarted, current: _Round) -> AsyncIterator[Event]:
        state = self.state
        assert state is not None
        if state.message is not None:  # text before the calls is a message of its own
            async for event in self._close_message("".join(current.text)):
                yield event
            current.text = []
        if state.tool_step is None:
            steps.new_tool_step(state)  # stored with the calls
            assert state.tool_step is not None
            yield self._step_event(state.tool_step, "created")
            yield self._step_event(state.tool_step, "in_progress")
        searching = started.name == prompt.FILE_SEARCH and state.file_search is not None
        call = _Call(steps.new_call_id(), started.name, "file_search" if searching else "function")
        current.calls[started.index] = call
        piece: dict[str, Any] = {"index": started.index, "id": call.id, "type": call.kind}
        if searching:
            piece["file_search"] = {}
        else:
            piece["function"] = {"name": call.name, "arguments": "", "output": None}
        yield self._step_delta(piece)

    async def _tool_calls(self, current: _Round) -> AsyncIterator[Event]:
        """Search now, or hand function calls to the client (requires_action)."""
        state = self.state
        assert state is not None and state.tool_step is not None
        details = []
        for call in (current.calls[index] for index in sorted(current.calls)):
            arguments = "".join(call.arguments) or "{}"
            if call.kind == "file_search":
                query = _query(arguments)
                results = await in_thread(steps.file_search, state, query)
                search = {"query": query, "results": results, **(state.file_search or {})}
                details.append({"id": call.id, "type": "file_search", "file_search": search})
            else:
                function = {"name": call.name, "arguments": arguments, "output": None}
                details.append({"id": call.id, "type": "function", "function": function})
        step = state.tool_step
        run = await in_thread(steps.record_tool_calls, state=state, calls=details, actor=self.actor)
        state.request = None
        if run.status == RunStatus.REQUIRES_ACTION:
            yield self._run_event()
            return
        yield self._step_event(step)
        state.tool_step = None
        if run.status == RunStatus.CANCELLED:
            yield self._run_event()
            return
        await in_thread(execution.next_round, state)

    async def _answer(self, current: _Round) -> AsyncIterator[Event]:
        """Store the answer and end the run in one transaction, then tell what happened."""
        state = self.state
        assert state is not None
        if state.message is None:  # the model said nothing at all: an empty message
            async for event in self._open_message():
                yield event
        message, step = state.message, state.message_step
        assert message is not None and step is not None
        run = await in_thread(
            steps.complete_answer,
            state=state,
            text="".join(current.text),
            cut_short=current.finish == "length",
            actor=self.actor,
            held=self.held,
        )
        yield self._message_event(message)
        yield self._step_event(step)
        state.message = state.message_step = state.request = None
        yield self._run_event(run.status)

    async def _end(
        self, status: RunStatus, *, last_error: dict[str, Any] | None = None
    ) -> AsyncIterator[Event]:
        """End the run without an answer; the steps and message it had open end with it."""
        state = self.state
        assert state is not None
        open_items = [item for item in (state.message, state.message_step, state.tool_step) if item]
        run = await in_thread(
            steps.finish_run, state=state, actor=self.actor, status=status, last_error=last_error
        )
        for item in open_items:
            if isinstance(item, Message):
                yield self._message_event(item)
            else:
                yield self._step_event(item)
        state.message = state.message_step = state.tool_step = state.request = None
        yield self._run_event(run.status)

    async def _keep_written(self, reason: RunStatus) -> None:
        """An interrupted answer: the message keeps what was written, as incomplete."""
        if self.state is not None and self.state.message is not None:
            await in_thread(
                steps.close_message,
                state=self.state,
                text="".join(self.written),
                actor=self.actor,
                interrupted=reason,
            )

    async def _fail(self, message: str, code: str = "server_error") -> AsyncIterator[Event]:
        await self._keep_written(RunStatus.FAILED)
        async for event in self._end(
            RunStatus.FAILED, last_error={"code": code, "message": message}
        ):
            yield event


def _query(arguments: str) -> str:
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return arguments
    return str(parsed.get("query", "")) if isinstance(parsed, dict) else str(parsed)


def _error_code(exc: DependencyUnavailable) -> str:
    return "rate_limit_exceeded" if "HTTP 429" in str(exc) else "server_error"


async def execute_run(
    run_pk: int,
    *,
    actor: Any,
    streaming: bool,
    prepared: RunState | None = None,
    held: list[Job] | None = None,
) -> AsyncIterator[Event]:
    """The events of executing a run (see RunEngine)."""
    engine = RunEngine(run_pk, actor=actor, streaming=streaming, prepared=prepared, held=held)
    async for event in engine.events():
        yield event
