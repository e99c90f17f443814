"""Open streams learn that their run is being cancelled from one check per event loop, not one
query per stream per second."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from assistants.openai import engine
from assistants.openai.services import execution


def test_one_check_covers_every_open_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[list[int]] = []

    def cancelling_runs(run_pks: list[int]) -> list[int]:
        asked.append(sorted(run_pks))
        seen.append(request.get())
        return [12]

    monkeypatch.setattr(engine, "CANCEL_CHECK_SECONDS", 0.01)
    monkeypatch.setattr(execution, "cancelling_runs", cancelling_runs)
    monkeypatch.setattr(engine, "lend_connection_back", lambda: None)

    request = contextvars.ContextVar("request", default="none")
    seen: list[str] = []

    async def streams() -> engine.CancelWatch:
        request.set("the first stream's request")
        watch = engine.cancel_watch()
        for run_pk in (11, 12, 13, 12):  # two streams may follow one run
            watch.watch(run_pk)
        while not watch.is_cancelling(12):
            await asyncio.sleep(0.005)
        assert not watch.is_cancelling(11)
        for run_pk in (11, 12, 13, 12):
            watch.unwatch(run_pk)
        polling = watch.polling
        assert polling is not None
        await asyncio.wait_for(polling, 1)  # nothing watched: the checks stop
        await asyncio.sleep(0)
        assert watch.polling is None  # and the watch lets go of the task (and so of the loop)
        return watch

    watch = asyncio.run(streams())
    assert asked and all(runs == [11, 12, 13] for runs in asked)
    assert set(seen) == {"none"}  # the check does not run in a stream's request context
    assert watch.watched == {}


def test_a_failed_check_is_retried_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    answers: list[object] = [RuntimeError("database restarting"), [5]]

    def cancelling_runs(run_pks: list[int]) -> list[int]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    monkeypatch.setattr(engine, "CANCEL_CHECK_SECONDS", 0.01)
    monkeypatch.setattr(execution, "cancelling_runs", cancelling_runs)
    monkeypatch.setattr(engine, "lend_connection_back", lambda: None)

    async def stream() -> bool:
        watch = engine.cancel_watch()
        watch.watch(5)
        try:
            for _ in range(200):
                if watch.is_cancelling(5):
                    return True
                await asyncio.sleep(0.005)
            return False
        finally:
            watch.unwatch(5)

    assert asyncio.run(stream())
