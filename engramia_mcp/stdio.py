"""The MCP server over stdio, for one project, as the local operator (`engramia mcp`).

stdout carries the protocol and nothing else: the SDK's stdio transport points file descriptor
1 at stderr while it serves, and Django logs to stderr.
"""

from __future__ import annotations

from typing import Any

import anyio
from django.db import connection
from mcp.server import ServerRequestContext
from mcp.server.stdio import stdio_server

from engramia_mcp.principal import Principal, operator_principal
from engramia_mcp.server import build_server
from engramia_site.errors import NotFound
from tenants.models import Project


def serve_stdio(project: Project, *, actor: Any, label: str) -> None:
    """Serve MCP on stdin/stdout until the client closes stdin."""
    project_pk, path = project.pk, project.path

    def resolve(ctx: ServerRequestContext[Any, Any]) -> Principal:
        # Read per call: a long-lived server sees the project's current settings (its model).
        current = Project.objects.select_related("tenant").filter(pk=project_pk).first()
        if current is None:
            raise NotFound(f"Project {path} no longer exists.")
        return operator_principal(current, actor, label)

    server = build_server(resolve)

    async def main() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    connection.close()  # calls run on the worker threads, each with its own connection
    anyio.run(main)
