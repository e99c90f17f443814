"""`engramia mcp --project T/P`: the MCP server over stdio, started as an MCP client starts it."""

from __future__ import annotations

import subprocess
import sys

from mcp import Client

from memory.models import Pattern
from tenants.models import AuditEntry
from tests.mcp.conftest import REPO, result_json, run, stdio_environment, stdio_parameters


def test_stdio_serves_the_project_as_the_operator(transactional_db, owner, reader):
    env = stdio_environment({"ENGRAMIA_ACTOR": ""})

    async def talk():
        async with Client(stdio_parameters("acme/support", env)) as client:
            tools = await client.list_tools()
            learned = await client.call_tool(
                "learn", {"task": "compress a folder", "code": "tar czf out.tgz dir"}
            )
            pattern_id = result_json(learned)["pattern_id"]
            recalled = await client.call_tool("recall", {"task": "compress a folder"})
            forgot = await client.call_tool("forget_pattern", {"pattern_id": pattern_id})
            bad = await client.call_tool("recall", {"limit": 0})
            project = await client.read_resource("engramia://project")
            return tools, learned, recalled, forgot, bad, project

    tools, learned, recalled, forgot, bad, project = run(talk)
    assert len(tools.tools) == 8
    pattern = Pattern.objects.get(pk=result_json(learned)["pattern_id"])
    assert pattern.project == owner.project and pattern.source == "mcp"
    assert result_json(recalled)["matches"][0]["pattern_id"] == pattern.pk
    assert not forgot.is_error and Pattern.objects.get(pk=pattern.pk).archived
    assert bad.is_error and "task: This field is required." in bad.content[0].text
    assert '"slug": "support"' in project.contents[0].text
    # Audited as the CLI's operator (no key), with the transport.
    calls = AuditEntry.objects.filter(action=AuditEntry.Action.ACCESS).order_by("id")
    assert [e.additional_data.get("tool") for e in calls] == [
        "learn",
        "recall",
        "forget_pattern",
        "recall",
        None,
    ]
    for entry in calls:
        assert entry.actor is None and entry.actor_email.startswith("cli:")
        assert entry.api_key_name == "" and entry.additional_data["transport"] == "mcp-stdio"
    archived = AuditEntry.objects.get(
        content_type__model="pattern", object_pk=str(pattern.pk), action=AuditEntry.Action.UPDATE
    )
    assert archived.additional_data["transport"] == "mcp-stdio"
    assert archived.actor_email.startswith("cli:")


def test_an_unknown_project_ends_the_command_with_one_line(transactional_db, project_a):
    finished = subprocess.run(
        [sys.executable, "-m", "engramia.cli", "mcp", "--project", "acme/nope"],
        cwd=REPO,
        env=stdio_environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode != 0
    assert finished.stdout == ""  # stdout is the protocol's, even when refusing
    assert "project 'acme/nope' does not exist" in finished.stderr
