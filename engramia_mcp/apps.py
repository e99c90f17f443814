"""The MCP server app (its `engramia mcp` command is found through INSTALLED_APPS)."""

from django.apps import AppConfig


class EngramiaMcpConfig(AppConfig):
    """Engramia's Model Context Protocol server."""

    name = "engramia_mcp"
    verbose_name = "MCP server"
