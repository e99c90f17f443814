"""A registry entry handed straight to the OpenAI Agents SDK and to the Anthropic SDK."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agents import Agent, FunctionTool, RunConfig, Runner
from agents.models.openai_responses import Converter, OpenAIResponsesModel
from anthropic import Anthropic
from anthropic.types import ToolParam
from anthropic.types.tool_param import InputSchemaTyped
from openai import AsyncOpenAI
from pydantic import TypeAdapter

from skills.services import to_anthropic_tool, to_openai_tool
from tests.fakes.llm_servers import FakeLLMServer
from tests.skills.conftest import SEARCH_TICKETS_PARAMETERS

STRICT_PARAMETERS = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["c", "f"]},
        "days": {"type": "array", "items": {"type": "integer"}},
    },
    "required": ["city", "unit", "days"],
    "additionalProperties": False,
}


async def _never_called(context: Any, arguments: str) -> str:
    raise AssertionError("the export test never runs the tool")


def _function_tool(tool: dict[str, Any]) -> FunctionTool:
    return FunctionTool(
        name=tool["name"],
        description=tool["description"],
        params_json_schema=tool["parameters"],
        on_invoke_tool=_never_called,
        strict_json_schema=tool["strict"],
    )


@pytest.mark.parametrize(
    ("parameters", "strict"), [(STRICT_PARAMETERS, True), (SEARCH_TICKETS_PARAMETERS, False)]
)
def test_openai_export_builds_an_agents_function_tool_unchanged(
    make_skill, project_a, parameters, strict
):
    skill = make_skill(project_a, "weather", description="Forecast.", parameters=parameters)
    tool = to_openai_tool(skill)
    assert tool["strict"] is strict
    function_tool = _function_tool(tool)
    assert function_tool.name == "weather"
    assert function_tool.description == "Forecast."
    # The SDK normalises strict schemas; a schema we call strict must come through untouched.
    assert function_tool.params_json_schema == parameters
    # And what the SDK sends to the Responses API is exactly our export.
    (sent,) = Converter.convert_tools([function_tool], []).tools
    assert sent == tool


def test_claiming_strict_for_an_open_schema_would_change_it(make_skill, project_a):
    # Why `strict` is computed: the SDK would otherwise rewrite optional parameters.
    skill = make_skill(project_a, "search_tickets", parameters=SEARCH_TICKETS_PARAMETERS)
    tool = to_openai_tool(skill)
    try:
        rewritten = _function_tool({**tool, "strict": True}).params_json_schema
    except Exception:  # the SDK may refuse outright; either way strict=True was wrong
        return
    assert rewritten != SEARCH_TICKETS_PARAMETERS


def test_exports_are_copies(make_skill, project_a):
    skill = make_skill(project_a, "search_tickets", parameters=SEARCH_TICKETS_PARAMETERS)
    to_openai_tool(skill)["parameters"]["properties"].clear()
    to_anthropic_tool(skill)["input_schema"]["properties"].clear()
    assert skill.parameters == SEARCH_TICKETS_PARAMETERS


def test_anthropic_export_is_a_valid_tool_param(make_skill, project_a):
    skill = make_skill(
        project_a,
        "search_tickets",
        description="Find tickets.",
        parameters=SEARCH_TICKETS_PARAMETERS,
    )
    tool = to_anthropic_tool(skill)
    validated = TypeAdapter(ToolParam).validate_python(tool)
    assert set(tool) <= ToolParam.__required_keys__ | ToolParam.__optional_keys__
    assert ToolParam.__required_keys__ <= set(tool)
    assert validated["name"] == "search_tickets"
    schema = TypeAdapter(InputSchemaTyped).validate_python(tool["input_schema"])
    assert schema["type"] == "object"
    assert schema["required"] == ["query"]


def test_an_agent_sends_the_exported_tool_to_the_responses_api(make_skill, project_a):
    skill = make_skill(project_a, "weather", description="Forecast.", parameters=STRICT_PARAMETERS)
    tool = to_openai_tool(skill)
    with FakeLLMServer(default="Sunny.") as fake:
        client = AsyncOpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=0)
        agent = Agent(
            name="forecaster",
            instructions="Answer briefly.",
            tools=[_function_tool(tool)],
            model=OpenAIResponsesModel(model="gpt-4.1", openai_client=client),
        )
        result = asyncio.run(
            Runner.run(agent, "Weather in Oslo?", run_config=RunConfig(tracing_disabled=True))
        )
        (request,) = [r for r in fake.requests if r.path.endswith("/responses")]
    assert result.final_output == "Sunny."
    assert request.json["tools"] == [tool]


def test_the_anthropic_sdk_sends_the_exported_tool(make_skill, project_a):
    skill = make_skill(
        project_a,
        "search_tickets",
        description="Find tickets.",
        parameters=SEARCH_TICKETS_PARAMETERS,
    )
    tool = to_anthropic_tool(skill)
    with FakeLLMServer(default="Found none.") as fake:
        client = Anthropic(base_url=fake.anthropic_base_url, api_key="sk-ant-test", max_retries=0)
        message = client.messages.create(
            model="claude-sonnet-5",
            max_tokens=64,
            tools=[tool],
            messages=[{"role": "user", "content": "Any open tickets about login?"}],
        )
        (request,) = fake.requests
    assert message.content[0].text == "Found none."
    assert request.json["tools"] == [tool]
