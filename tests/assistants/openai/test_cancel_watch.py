"""Open streams learn that their run is being cancelled from one check per event loop, not one
query per stream per second."""

from __future__ import annotations

import asyncio

import pytest

from assistants.openai import engine
from assistants.openai.services import execution


def test_one_check_covers_every_open_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[list[int]] = []

    def cancelling_runs(run_pks: list[int]) -> list[int]:
        asked.append(sorted(run_pks))
        return [12]

    monkeypatch.setattr(engine, "CANCEL_CHECK_SECONDS", 0.01)
    monkeypatch.setattr(execution, "cancelling_runs", cancelling_runs)
    monkeypatch.setattr(engine, "lend_connection_back", lambda: None)

    async def streams() -> engine.CancelWatch:
        watch = engine.cancel_watch()
        for run_pk in (11, 12, 13, 12):  # two streams may follow one run
            watch.watch(run_pk)
        while not watch.is_cancelling(12):
            await asyncio.sleep(0.005)
        assert not watch.is_cancelling(11)
        for run_pk in (11, 12, 13, 12):
            watch.unwatch(run_pk)
        assert watch.polling is not None
        await asyncio.wait_for(watch.polling, 1)  # nothing watched: the checks stop
        return watch

    watch = asyncio.run(streams())
    assert asked and all(runs == [11, 12, 13] for runs in asked)
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
