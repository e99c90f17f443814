"""The Agents SDK adapter in remote mode, against a live test server and a loopback judge."""

from __future__ import annotations

import asyncio

import pytest
from agents import Agent, Runner

from engramia import Memory
from engramia.sdk.openai_agents import EngramiaRunHooks, engramia_instructions
from memory.models import Evaluation, Pattern
from tests.sdk.conftest import verdict

pytestmark = pytest.mark.django_db(transaction=True)


def test_recall_learn_grade_and_credit_over_the_api(
    live_server, editor, offline_model, judge, quickstart
):
    judge.enqueue(verdict(5, "Handle quoting."), verdict(8, "Good."))
    memory = Memory(api_url=live_server.url, api_key=editor.secret)
    agent = Agent(name="coder", instructions=engramia_instructions(memory, base="You are a senior developer."), model="gpt-4.1")  # noqa: E501  # fmt: skip
    hooks = EngramiaRunHooks(memory, num_evals=1)

    async def scenario():
        try:
            for task in (quickstart.FIRST_TASK, quickstart.SECOND_TASK):
                await Runner.run(agent, task, hooks=hooks)
                assert await hooks.aflush(timeout=20)
        finally:
            await memory.aclose()

    asyncio.run(scenario())
    hooks.close()
    memory.close()

    second_prompt = offline_model.calls[1].system_instructions
    assert quickstart.CSV_PARSER in second_prompt and quickstart.FIRST_TASK in second_prompt
    first = Pattern.objects.get(task=quickstart.FIRST_TASK)
    second = Pattern.objects.get(task=quickstart.SECOND_TASK)
    assert first.project == editor.project and first.source == "agent"
    assert second.metadata["recalled_pattern_ids"] == [first.pk]
    outcome = Evaluation.objects.get(pattern=first, evaluator="agent_outcome")
    assert (outcome.score, outcome.feedback, outcome.actor_id) == (8.0, "Good.", editor.user.pk)
    graded = Evaluation.objects.get(pattern=second)
    assert graded.evaluator.startswith("llm:") and graded.score == 8.0
    assert Evaluation.objects.get(pattern=first, evaluator__startswith="llm:").score == 5.0
