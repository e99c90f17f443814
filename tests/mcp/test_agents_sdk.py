"""The OpenAI Agents SDK's MCPServerStdio pointed at `engramia mcp`: an agent recalls and learns.

The model is the SDK's own scripted test model (agents.testing.ScriptedModel): it calls the MCP
tools the run offers it, and the SDK carries the calls over stdio to Engramia.
"""

from __future__ import annotations

import json
import sys

from agents import Agent, RunConfig, Runner
from agents.mcp import MCPServerStdio
from agents.testing import ScriptedModel, assistant_message, function_call

from memory.models import Pattern
from memory.services import learn_pattern
from tenants.models import AuditEntry
from tests.mcp.conftest import REPO, run, stdio_environment


def _tool_output(call, call_id):
    """The text the run sent back to the model for one of its tool calls."""
    for item in call.input:
        if isinstance(item, dict) and item.get("call_id") == call_id and "output" in item:
            output = item["output"]
            return output if isinstance(output, str) else output[0]["text"]
    raise AssertionError(f"no output for {call_id}")


def test_an_agent_recalls_and_learns_through_mcp_stdio(transactional_db, owner):
    learn_pattern(
        project=owner.project,
        task="retry a flaky HTTP call",
        code="use exponential backoff with jitter",
        eval_score=9,
        actor=None,
    )
    model = ScriptedModel(
        [
            [function_call("recall", {"task": "retry a flaky HTTP call"}, call_id="recall-1")],
            [
                function_call(
                    "learn",
                    {
                        "task": "retry a flaky gRPC call",
                        "code": "exponential backoff with jitter, max 5 tries",
                        "eval_score": 8,
                    },
                    call_id="learn-1",
                )
            ],
            [assistant_message("Done: recalled the HTTP pattern and learned the gRPC one.")],
        ]
    )
    params = {
        "command": sys.executable,
        "args": ["-m", "engramia.cli", "mcp", "--project", "acme/support"],
        # Audited as the user ENGRAMIA_ACTOR names (the CLI's operator).
        "env": stdio_environment({"ENGRAMIA_ACTOR": owner.user.email}),
        "cwd": str(REPO),
    }

    async def agent_run():
        async with MCPServerStdio(params, client_session_timeout_seconds=60) as server:
            agent = Agent(name="engineer", model=model, mcp_servers=[server])
            return await Runner.run(
                agent, "Make the gRPC client robust.", run_config=RunConfig(tracing_disabled=True)
            )

    result = run(agent_run)
    model.assert_complete()
    assert result.final_output.startswith("Done")
    offered = {tool.name for tool in model.calls[0].tools}
    assert {"recall", "learn", "forget_pattern"} <= offered
    recalled = json.loads(_tool_output(model.calls[1], "recall-1"))
    assert recalled["matches"][0]["code"] == "use exponential backoff with jitter"
    learned = Pattern.objects.get(task="retry a flaky gRPC call")
    assert learned.project == owner.project and learned.source == "mcp"
    assert learned.eval_score == 8
    calls = AuditEntry.objects.filter(action=AuditEntry.Action.ACCESS).order_by("id")
    assert [entry.additional_data["tool"] for entry in calls] == ["recall", "learn"]
    assert {(entry.actor, entry.additional_data["transport"]) for entry in calls} == {
        (owner.user, "mcp-stdio")
    }
