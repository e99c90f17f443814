"""MCP clients for the tests: the `mcp` SDK's own, over streamable HTTP and over stdio."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

REPO = Path(__file__).resolve().parents[2]
Result = TypeVar("Result")


def run(work: Callable[[], Awaitable[Result]]) -> Result:
    """Run an async client conversation from a synchronous test (the ORM stays outside it)."""
    return anyio.run(work)


@asynccontextmanager
async def http_client(
    base_url: str, secret: str | None, *, project: str | None = None, mode: str = "auto"
) -> AsyncIterator[Client]:
    """An MCP client on base_url/mcp, authenticated with an Engramia key."""
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    if project:
        headers["X-Engramia-Project"] = project
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30))
    async with (
        http,
        Client(streamable_http_client(f"{base_url}/mcp", http_client=http), mode=mode) as client,
    ):
        yield client


def stdio_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an `engramia mcp` child: the suite's settings and test database."""
    from django.conf import settings

    from tests.jobs.conftest import worker_database_url

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "engramia_site.settings_test",
        "ENGRAMIA_DATABASE_URL": worker_database_url(),
        "ENGRAMIA_HOME": str(settings.ENGRAMIA_HOME),
        "ENGRAMIA_LOG_LEVEL": "WARNING",
        **(extra or {}),
    }


def stdio_parameters(project_path: str, env: dict[str, str]) -> StdioServerParameters:
    """`engramia mcp --project T/P`, as a client (Claude Desktop, the Agents SDK) starts it."""
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "engramia.cli", "mcp", "--project", project_path],
        env=env,
        cwd=str(REPO),
    )


def result_json(result: Any) -> Any:
    """A tool result's JSON body (from its text content, as a model reads it)."""
    return json.loads(result.content[0].text)
