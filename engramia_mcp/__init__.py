"""The MCP server: Engramia's memory and skills as Model Context Protocol tools.

Built on the official `mcp` SDK's low-level server. Tools call the same operations as the API
(`memory.operations`, `skills.services`), so limits, roles and audit are the API's. Two transports:
streamable HTTP at /mcp (`engramia_mcp.http`, mounted next to Django by `engramia serve`) with
Engramia API keys, and stdio (`engramia mcp --project T/P`) acting as the CLI's operator.
"""
