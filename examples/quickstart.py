"""Engramia quick start: the OpenAI Agents SDK with memory, in three lines.

    .venv/bin/python examples/quickstart.py

The program below is the one from the README: recall happens in the agent's instructions, and
the hooks learn each run, grade it with the LLM judge (when ENGRAMIA_LLM is configured) and
credit the patterns the run was shown. It runs twice with related tasks: the second run's
system prompt carries the first run's solution.

With OPENAI_API_KEY set it talks to gpt-4.1. Without it, a scripted model (the Agents SDK's
`agents.testing.ScriptedModel`) stands in for the network, so this runs anywhere, offline.
Memory is local: ENGRAMIA_PROJECT (default demo/quickstart) in ENGRAMIA_DATABASE_URL, or in the
embedded PostgreSQL under ENGRAMIA_HOME when that is unset (migrated on first use).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from agents import Agent, Runner
from agents.run import AgentRunner, RunConfig, set_default_agent_runner
from agents.testing import ModelCall, ModelStep, ScriptedModel, assistant_message

from engramia import Memory
from engramia.sdk.openai_agents import EngramiaRunHooks, engramia_instructions

FIRST_TASK = "Build a CSV parser."
SECOND_TASK = "Build a CSV parser that handles quoted fields."


async def program(task: str = FIRST_TASK) -> Any:
    """The three-line integration, exactly as in the docs (the task is a parameter here)."""
    memory = Memory()  # picks up ENGRAMIA_DATABASE_URL + provider config
    agent = Agent(name="coder", instructions=engramia_instructions(memory, base="You are a senior developer."), model="gpt-4.1")  # noqa: E501  # fmt: skip
    hooks = EngramiaRunHooks(memory)
    result = await Runner.run(agent, task, hooks=hooks)
    return result


# -- offline stand-in for the model ---------------------------------------------------------

CSV_PARSER = '''import csv
import io


def parse_csv(text: str) -> list[dict[str, str]]:
    """Rows of a CSV document with a header line, as dictionaries."""
    return list(csv.DictReader(io.StringIO(text)))'''


def _user_text(call: ModelCall) -> str:
    items = (
        call.input if isinstance(call.input, list) else [{"role": "user", "content": call.input}]
    )
    for item in reversed(items):
        if isinstance(item, dict) and item.get("role") == "user":
            return str(item.get("content", ""))
    return ""


def scripted_solution(call: ModelCall) -> list[Any]:
    """What the offline model answers: a solution that builds on what memory showed it."""
    task = _user_text(call)
    shown = "Proven solutions from Engramia memory" in (call.system_instructions or "")
    if "csv" not in task.lower():
        return [assistant_message(f"# No offline script for: {task}\npass")]
    if shown:
        return [
            assistant_message(
                "# Builds on the recalled parser: csv.DictReader already honours quoted fields.\n"
                + CSV_PARSER
            )
        ]
    return [assistant_message(CSV_PARSER)]


class OfflineModel(ScriptedModel):
    """A ScriptedModel that answers every call with `responder` (one scripted step per call)."""

    def __init__(self, responder: Any = scripted_solution) -> None:
        super().__init__()
        self.responder = responder

    async def get_response(self, *args: Any, **kwargs: Any) -> Any:
        self.enqueue(ModelStep.respond(self.responder))
        return await super().get_response(*args, **kwargs)

    async def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        self.enqueue(ModelStep.respond(self.responder))
        async for event in super().stream_response(*args, **kwargs):
            yield event


class OfflineProvider:
    """A model provider that resolves every model name ("gpt-4.1" too) to one OfflineModel."""

    def __init__(self, model: ScriptedModel | None = None) -> None:
        self.model = model or OfflineModel()

    def get_model(self, model_name: str | None) -> ScriptedModel:
        return self.model

    async def aclose(self) -> None:
        return None


class _OfflineRunner(AgentRunner):
    def __init__(self, provider: OfflineProvider) -> None:
        super().__init__()
        self.provider = provider

    async def run(self, starting_agent: Any, input: Any, **kwargs: Any) -> Any:
        if kwargs.get("run_config") is None:  # Runner.run passes run_config=None explicitly
            kwargs["run_config"] = RunConfig(model_provider=self.provider)  # type: ignore[arg-type]
        return await super().run(starting_agent, input, **kwargs)


def use_offline_model(model: ScriptedModel | None = None) -> OfflineProvider:
    """Make `Runner.run` use a scripted model for every agent, and keep traces local."""
    from agents import set_tracing_disabled

    provider = OfflineProvider(model)
    set_default_agent_runner(_OfflineRunner(provider))
    set_tracing_disabled(True)
    return provider


async def main() -> None:
    if not os.environ.get("ENGRAMIA_API_URL"):  # remote: the API key decides the project
        os.environ.setdefault("ENGRAMIA_PROJECT", "demo/quickstart")
    offline = not os.environ.get("OPENAI_API_KEY")
    provider = use_offline_model() if offline else None
    for task in (FIRST_TASK, SECOND_TASK):
        result = await program(task)
        print(f"\n=== {task}\n{result.final_output}")
    if provider is not None:
        prompt = provider.model.calls[-1].system_instructions or ""
        recalled = "Proven solutions from Engramia memory" in prompt
        print(
            f"\n(offline model) the second run's system prompt had the first run's solution: "
            f"{recalled}"
        )
    memory = Memory()
    print("\nWhat memory recalls now:")
    for match in await memory.arecall(SECOND_TASK, limit=3):
        print(
            f"  #{match.pattern_id} {match.task!r} similarity={match.similarity:.2f} "
            f"eval={match.eval_score} score={match.score:.2f}"
        )
    await memory.aclose()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
