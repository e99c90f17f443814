"""The MCP server: tools, resources and a prompt on the `mcp` SDK's low-level `Server`.

The low-level server hands tool arguments over as sent, so the serializers behind the tools
(`engramia_mcp.tools`) are the only validation, with the API's limits and messages. Both
transports build the same server; they differ only in how a request finds its principal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError

from engramia_mcp.calls import Answer, call_tool, read_resource, refusal
from engramia_mcp.principal import Principal
from engramia_mcp.threads import in_thread
from engramia_mcp.tools import TOOLS
from engramia_site.errors import DomainError
from memory.api.project import ProjectSerializer
from memory.services import project_metrics

SERVER_NAME = "engramia"
INSTRUCTIONS = (
    "Engramia is this project's memory of what worked. Call `recall` with your task before you "
    "start; after a solution works, `learn` it; after a run that used recalled patterns, report "
    "the result with `record_outcome`. `search_skills` and `get_skill` find tools other agents "
    "registered. `forget_pattern` archives a pattern that is wrong."
)
PROMPT_NAME = "use-engramia-memory"
PROMPT_TEXT = """You have Engramia, a shared memory of solutions that worked in this project.

- Before you start a task, call `recall` with the task in plain words. Reuse a match whose
  reuse_tier is "duplicate"; start from an "adapt" match; treat "fresh" matches as hints only.
  Prefer matches with a high score and eval_score.
- When a solution has worked (tests pass, the user confirms), call `learn` with the task, the
  solution as `code`, its output if useful, and an honest eval_score from 0 to 10.
- After a run that used recalled patterns, call `record_outcome` with their pattern_ids and a
  score for how the run went, so good patterns rise and misleading ones sink.
- If a recalled pattern is wrong or outdated, call `forget_pattern` with its id.
- Need a tool? `search_skills` with what it should do, then `get_skill` for its definition.
- Never store secrets, credentials or personal data in memory."""

Resolver = Callable[[ServerRequestContext[Any, Any]], Principal]


def _project(principal: Principal) -> dict[str, Any]:
    return dict(ProjectSerializer(principal.project).data)


def _metrics(principal: Principal) -> dict[str, Any]:
    return project_metrics(principal.project)


RESOURCES: dict[str, tuple[types.Resource, Callable[[Principal], dict[str, Any]]]] = {
    "engramia://project": (
        types.Resource(
            uri="engramia://project",
            name="project",
            title="Project",
            description="The project this connection acts on: names, read path, models.",
            mime_type="application/json",
        ),
        _project,
    ),
    "engramia://project/metrics": (
        types.Resource(
            uri="engramia://project/metrics",
            name="metrics",
            title="Project metrics",
            description="Counts and averages of the project's memory (patterns, evaluations).",
            mime_type="application/json",
        ),
        _metrics,
    ),
}


def _tool_definitions() -> list[types.Tool]:
    return [
        types.Tool(
            name=tool.name,
            title=tool.title,
            description=tool.description,
            input_schema=tool.schema(),
            annotations=types.ToolAnnotations(
                title=tool.title,
                read_only_hint=tool.read_only,
                destructive_hint=tool.destructive if not tool.read_only else None,
                open_world_hint=False,
            ),
        )
        for tool in TOOLS
    ]


def _tool_result(answer: Answer) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=answer.text)],
        structured_content=answer.body,
        is_error=answer.is_error,
    )


def build_server(resolve: Resolver) -> Server[Any]:
    """The MCP server; resolve(ctx) names the principal of each request (in a worker thread)."""
    definitions = _tool_definitions()

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=definitions)

    async def on_call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        def call() -> Answer:
            try:
                principal = resolve(ctx)
            except DomainError as exc:  # e.g. the stdio server's project was deleted meanwhile
                return refusal(exc)
            return call_tool(principal, params.name, params.arguments)

        return _tool_result(await in_thread(call))

    async def on_read_resource(
        ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        if uri not in RESOURCES:
            raise MCPError(code=types.INVALID_PARAMS, message=f"No resource {uri!r}.")
        read = RESOURCES[uri][1]

        def read_as_caller() -> Answer:
            try:
                principal = resolve(ctx)
            except DomainError as exc:
                return refusal(exc)
            return read_resource(principal, uri, read)

        answer = await in_thread(read_as_caller)
        if answer.is_error:
            raise MCPError(code=types.INVALID_REQUEST, message=answer.text)
        contents = types.TextResourceContents(
            uri=uri, text=answer.text, mime_type="application/json"
        )
        return types.ReadResourceResult(contents=[contents])

    return Server(
        SERVER_NAME,
        version=_version(),
        title="Engramia",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=on_call_tool,
        on_list_resources=_list_resources,
        on_read_resource=on_read_resource,
        on_list_prompts=_list_prompts,
        on_get_prompt=_get_prompt,
    )


async def _list_resources(
    ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
) -> types.ListResourcesResult:
    return types.ListResourcesResult(resources=[entry for entry, _ in RESOURCES.values()])


async def _list_prompts(
    ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
) -> types.ListPromptsResult:
    prompt = types.Prompt(
        name=PROMPT_NAME,
        title="Use Engramia memory",
        description="When to recall, learn, report outcomes and forget, for any agent.",
        arguments=[
            types.PromptArgument(
                name="task", description="The task at hand (optional).", required=False
            )
        ],
    )
    return types.ListPromptsResult(prompts=[prompt])


async def _get_prompt(
    ctx: ServerRequestContext[Any, Any], params: types.GetPromptRequestParams
) -> types.GetPromptResult:
    if params.name != PROMPT_NAME:
        raise MCPError(code=types.INVALID_PARAMS, message=f"No prompt {params.name!r}.")
    text = PROMPT_TEXT
    task = (params.arguments or {}).get("task", "").strip()
    if task:
        text += f"\n\nThe task at hand: {task}\nStart by calling `recall` with it."
    message = types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))
    return types.GetPromptResult(description="Use Engramia memory", messages=[message])


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("engramia")
    except PackageNotFoundError:  # running from a checkout that was not installed
        return "0"
