"""engramia mcp --project T/P: the MCP server over stdio (local mode, the CLI's actor)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from engramia_mcp.stdio import serve_stdio
from tenants.management.base import EngramiaCommand


class Command(EngramiaCommand):
    help = (
        "Serve the project's memory and skills to an MCP client on stdin/stdout (stdout carries "
        "only the protocol; logs go to stderr). Calls act as the operator (ENGRAMIA_ACTOR, else "
        "cli:<os user>) with every role in the project."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="tenant-slug/project-slug")

    def handle_command(self, *args: Any, **options: Any) -> None:
        project = self.project_from_option(options["project"])
        serve_stdio(project, actor=self.actor, label=self.label)
