"""Many runs in one event loop are not serialized by the SDK, and never mix their memories."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from agents import Agent, Runner
from agents.testing import assistant_message

from engramia import Memory
from engramia.sdk.openai_agents import EngramiaRunHooks, engramia_instructions
from memory.models import Pattern

pytestmark = pytest.mark.django_db(transaction=True)

RUNS = 10
MODEL_SECONDS = 0.2
EMBED_SECONDS = 0.1
TOPICS = [
    "kafka",
    "redis",
    "nginx",
    "postgres",
    "docker",
    "graphql",
    "oauth",
    "websocket",
    "terraform",
    "prometheus",
]


class SlowEmbedder:
    """The project's embedder, slowed down like a remote embedding API, recording each call."""

    def __init__(self, inner, spans, lock):
        self.inner, self.name, self.spans, self.lock = inner, inner.name, spans, lock

    def _timed(self, method, argument):
        started = time.monotonic()
        time.sleep(EMBED_SECONDS)
        result = method(argument)
        with self.lock:
            self.spans.append((started, time.monotonic(), threading.get_ident()))
        return result

    def embed_query(self, text):
        return self._timed(self.inner.embed_query, text)

    def embed_documents(self, texts):
        return self._timed(self.inner.embed_documents, texts)


def _overlapping(spans):
    """The largest number of spans in progress at one moment."""
    events = sorted(
        [(start, 1) for start, _, *_ in spans] + [(end, -1) for _, end, *_ in spans],
        key=lambda event: (event[0], event[1]),
    )
    peak = running = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def test_concurrent_runs_overlap_and_keep_their_own_recalls(offline_model, monkeypatch):
    import memory.services.learn as learn_module
    import memory.services.recall as recall_module

    memory = Memory("acme/support")
    seeded = {
        topic: memory.learn(
            f"Configure {topic} for production", f"# {topic} production settings"
        ).pattern_id
        for topic in TOPICS
    }

    embed_spans: list[tuple[float, float, int]] = []
    lock = threading.Lock()
    for module in (learn_module, recall_module):
        real = module.embedder_for
        monkeypatch.setattr(
            module,
            "embedder_for",
            lambda project, real=real: SlowEmbedder(real(project), embed_spans, lock),
        )

    model_spans: list[tuple[float, float]] = []

    async def slow_model(call):
        started = time.monotonic()
        await asyncio.sleep(MODEL_SECONDS)
        model_spans.append((started, time.monotonic()))
        task = call.input[-1]["content"]
        return [assistant_message(f"answer to: {task}")]

    offline_model.responder = slow_model
    agent = Agent(
        name="ops",
        model="gpt-4.1",
        instructions=engramia_instructions(memory, base="You are an SRE.", limit=1),
    )
    hooks = EngramiaRunHooks(memory)

    async def scenario():
        return await asyncio.gather(
            *(
                Runner.run(agent, f"Configure {topic} for production with TLS", hooks=hooks)
                for topic in TOPICS
            )
        )

    results = asyncio.run(scenario())
    assert len(results) == RUNS

    # The model calls overlapped: the runs were not serialized. (How many overlap at once is
    # bounded by the loop's default thread pool, which the SDK's recalls and learns share.)
    assert len(model_spans) == RUNS
    assert _overlapping(model_spans) >= RUNS // 2
    elapsed = max(end for _, end in model_spans) - min(start for start, _ in model_spans)
    assert elapsed < RUNS * MODEL_SECONDS / 2
    # Engramia's own (slow, synchronous) work ran in worker threads, side by side.
    assert len(embed_spans) == 2 * RUNS  # one recall and one learn per run
    assert _overlapping(embed_spans) >= 2
    assert len({thread for *_, thread in embed_spans}) >= 2
    assert threading.get_ident() not in {thread for *_, thread in embed_spans}

    # Each run was shown, and credited, its own topic's pattern only.
    for call in offline_model.calls:
        task = call.input[-1]["content"]
        topic = task.split()[1]
        assert f"# {topic} production settings" in call.system_instructions
        others = [other for other in TOPICS if other != topic]
        assert not any(f"# {other} production" in call.system_instructions for other in others)
    for topic in TOPICS:
        learned = Pattern.objects.get(task=f"Configure {topic} for production with TLS")
        assert learned.metadata["recalled_pattern_ids"] == [seeded[topic]]
        assert learned.code == f"answer to: Configure {topic} for production with TLS"
    hooks.close()
