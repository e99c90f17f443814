"""Server-sent events of a streamed run, from an async iterator (the web server's bridge sends
each event from the event loop as it comes, while the loop serves the other streams).

The run is executed in the request. If the client goes away mid-run, a job takes the run over
from its last stored state, so it still ends (and is learned) as if the client had stayed. A
run that ends in the stream stores its learning job held (jobs.services.hold) and queues it
once `done` is sent, or the client has gone: a client that stops reading at `done` (the openai
SDK does) does not wait for it; one that reads to the end of the response does.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from django.db import connection
from django.http import StreamingHttpResponse

from assistants.openai.engine import Event, execute_run, in_thread
from assistants.openai.services.execution import RunState
from assistants.openai.services.runs import hand_over
from engramia_site.openai_errors import openai_error
from engramia_site.request_context import ActingContext, current_context, resumed
from jobs.models import Job
from jobs.services import release_held

logger = logging.getLogger(__name__)

DONE = b"event: done\ndata: [DONE]\n\n"


def encode(name: str, data: Any) -> bytes:
    """One server-sent event."""
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


# Events always followed at once by another (a step's or message's start, then its first delta,
# or its end): sent together with it, in one write, rather than as writes of their own.
SENT_WITH_NEXT = frozenset(
    {
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
    }
)


def _release_connection() -> None:
    # The request's thread ends with the stream; its connection would otherwise linger.
    if not connection.in_atomic_block:
        connection.close()


def _end_stream(held: list[Job]) -> None:
    """Queue the jobs the stream held (its learning job): the client has its `done` by now.
    A process that dies first leaves them to the sweeper, which queues them when due."""
    try:
        for job in held:
            release_held(job)
    finally:
        _release_connection()


async def run_events(
    prelude: list[Event],
    run_pk: int,
    actor: Any,
    context: ActingContext | None,
    prepared: RunState | None = None,
) -> AsyncIterator[bytes]:
    """The run's events as SSE bytes: what the view already did, then the execution, then done."""
    finished = False
    held: list[Job] = []  # the run's learning job, queued once the client has `done`
    waiting: list[bytes] = []  # events to send with the next one (SENT_WITH_NEXT)
    with resumed(context):
        try:
            for name, data in prelude:
                yield encode(name, data)
            events = execute_run(run_pk, actor=actor, streaming=True, prepared=prepared, held=held)
            async for name, data in events:
                waiting.append(encode(name, data))
                if name not in SENT_WITH_NEXT:
                    yield b"".join(waiting)
                    waiting.clear()
            finished = True
            yield b"".join([*waiting, DONE])
        except (asyncio.CancelledError, GeneratorExit):
            if not finished:
                await in_thread(hand_over, run_pk=run_pk, actor=actor)
            raise
        except Exception:
            logger.exception("streaming run %s failed", run_pk)
            error = encode("error", openai_error(500, "The run failed on the server."))
            yield b"".join([*waiting, error, DONE])
        finally:
            # Shielded: a client that leaves right after `done` has the bridge cancel this
            # stream while it ends, and the learning job must be queued all the same.
            await asyncio.shield(in_thread(_end_stream, held))


def stream_response(run: Any, prelude: list[Event], actor: Any) -> StreamingHttpResponse:
    """The streamed answer of a request that started (or resumed) a run, prepared by it."""
    prepared = getattr(run, "prepared", None)
    events = run_events(prelude, run.pk, actor, current_context(), prepared)
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # proxies must pass events on as they come
    return response
