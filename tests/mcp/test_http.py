"""The MCP server over streamable HTTP at /mcp, driven by the `mcp` SDK's own client.

The site runs as `engramia serve` runs it (engramia_site.asgi on uvicorn, /mcp mounted beside
Django); keys, roles and audit are the API's.
"""

from __future__ import annotations

import httpx2
import pytest

from memory.models import Pattern
from tenants.models import AuditEntry
from tests.conftest import make_persona
from tests.mcp.conftest import http_client, result_json, run

CONTRACT_TOOLS = {
    "recall",
    "learn",
    "evaluate",
    "record_outcome",
    "search_skills",
    "get_skill",
    "list_patterns",
    "forget_pattern",
}


def _register_skill(persona):
    from skills.services import register_skill

    return register_skill(
        project=persona.project,
        name="convert_currency",
        description="Convert an amount between currencies at today's rate.",
        parameters={
            "type": "object",
            "properties": {"amount": {"type": "number"}, "to": {"type": "string"}},
            "required": ["amount", "to"],
        },
        tags=["finance"],
        actor=persona.user,
    )


def test_the_server_lists_its_tools_resources_and_prompt(asgi_server, reader):
    async def talk():
        async with http_client(asgi_server, reader.secret) as client:
            return (
                await client.list_tools(),
                await client.list_resources(),
                await client.list_prompts(),
                await client.get_prompt("use-engramia-memory", {"task": "fix the csv import"}),
            )

    tools, resources, prompts, prompt = run(talk)
    by_name = {tool.name: tool for tool in tools.tools}
    assert set(by_name) == CONTRACT_TOOLS
    recall = by_name["recall"].input_schema
    # The schema is read off the API's serializer: the same limits.
    assert recall["properties"]["task"]["maxLength"] == 20_000
    assert recall["properties"]["limit"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 50,
        "default": 5,
        "description": "How many patterns to return.",
    }
    assert recall["required"] == ["task"] and recall["additionalProperties"] is False
    assert by_name["learn"].input_schema["required"] == ["task", "code"]
    assert by_name["recall"].annotations.read_only_hint is True
    assert by_name["forget_pattern"].annotations.destructive_hint is True
    assert {r.uri for r in resources.resources} == {
        "engramia://project",
        "engramia://project/metrics",
    }
    assert [p.name for p in prompts.prompts] == ["use-engramia-memory"]
    text = prompt.messages[0].content.text
    assert "`recall`" in text and "`learn`" in text and "fix the csv import" in text


def test_every_tool_works_over_http(asgi_server, owner):
    skill = _register_skill(owner)

    async def talk():
        async with http_client(asgi_server, owner.secret) as client:
            call = client.call_tool
            learned = await call(
                "learn", {"task": "parse a csv file", "code": "csv.reader(f)", "eval_score": 8}
            )
            pattern_id = result_json(learned)["pattern_id"]
            return {
                "learn": learned,
                "recall": await call("recall", {"task": "parse a csv file", "explain": True}),
                "list": await call("list_patterns", {"limit": 5}),
                "outcome": await call("record_outcome", {"pattern_ids": [pattern_id], "score": 9}),
                "evaluate": await call("evaluate", {"task": "t", "code": "c"}),
                "search": await call("search_skills", {"q": "currency exchange"}),
                "browse": await call("search_skills", {"tags": ["finance"]}),
                "skill": await call("get_skill", {"skill_id": skill.pk, "format": "anthropic"}),
                "forget": await call("forget_pattern", {"pattern_id": pattern_id}),
                "after": await call("recall", {"task": "parse a csv file"}),
                "project": await client.read_resource("engramia://project"),
                "metrics": await client.read_resource("engramia://project/metrics"),
            }

    answers = run(talk)
    ok = {name: a for name, a in answers.items() if name not in ("evaluate", "project", "metrics")}
    assert all(not answer.is_error for answer in ok.values()), ok
    learned = result_json(answers["learn"])
    assert learned["stored"] is True and learned["pattern_count"] == 1
    pattern = Pattern.objects.get(pk=learned["pattern_id"])
    assert pattern.source == "mcp" and pattern.project == owner.project
    match = result_json(answers["recall"])["matches"][0]
    assert match["pattern_id"] == pattern.pk and match["reuse_tier"] == "duplicate"
    assert match["explain"]["eval_multiplier"] == pytest.approx(1.3)
    assert answers["recall"].structured_content["matches"][0]["pattern_id"] == pattern.pk
    assert [p["pattern_id"] for p in result_json(answers["list"])["patterns"]] == [pattern.pk]
    assert result_json(answers["outcome"]) == {"credited": 1}
    # No judge is configured in the suite: a refusal the model can read, not a crash.
    assert answers["evaluate"].is_error
    assert "Unavailable" in answers["evaluate"].content[0].text
    assert "ENGRAMIA_LLM" in answers["evaluate"].content[0].text
    assert [s["name"] for s in result_json(answers["search"])["skills"]] == ["convert_currency"]
    assert result_json(answers["browse"])["skills"][0]["id"] == skill.pk
    tool = result_json(answers["skill"])["tool"]
    assert tool["name"] == "convert_currency" and tool["input_schema"]["required"] == [
        "amount",
        "to",
    ]
    assert result_json(answers["forget"]) == {"pattern_id": pattern.pk, "archived": True}
    assert result_json(answers["after"])["matches"] == []
    pattern.refresh_from_db()
    assert pattern.archived and pattern.eval_count == 2  # learn's score and the outcome
    project = result_json_resource(answers["project"])
    assert (project["tenant"], project["slug"]) == ("acme", "support")
    assert result_json_resource(answers["metrics"])["archived_count"] == 1


def result_json_resource(result):
    import json

    return json.loads(result.contents[0].text)


def test_learned_over_mcp_is_recalled_over_rest_and_the_other_way(asgi_server, editor):
    rest = editor.client()
    rest.post("/v1/learn", {"task": "resize an image", "code": "img.thumbnail()"}, format="json")

    async def talk():
        async with http_client(asgi_server, editor.secret) as client:
            await client.call_tool("learn", {"task": "rotate a log file", "code": "logrotate"})
            return await client.call_tool("recall", {"task": "resize an image", "limit": 1})

    recalled_over_mcp = run(talk)
    assert result_json(recalled_over_mcp)["matches"][0]["code"] == "img.thumbnail()"
    recalled_over_rest = rest.post(
        "/v1/recall", {"task": "rotate a log file", "limit": 1}, format="json"
    ).json()
    assert recalled_over_rest["matches"][0]["code"] == "logrotate"
    assert recalled_over_rest["matches"][0]["source"] == "mcp"


def test_a_reader_may_read_but_its_writes_are_refused(asgi_server, owner, reader):
    from memory.services import learn_pattern

    pattern = learn_pattern(
        project=owner.project, task="deploy the app", code="make deploy", actor=None
    )

    async def talk():
        async with http_client(asgi_server, reader.secret) as client:
            writes = {
                "learn": await client.call_tool("learn", {"task": "t", "code": "c"}),
                "forget_pattern": await client.call_tool(
                    "forget_pattern", {"pattern_id": pattern.pattern_id}
                ),
                "record_outcome": await client.call_tool(
                    "record_outcome", {"pattern_ids": [pattern.pattern_id], "score": 0}
                ),
                "evaluate": await client.call_tool("evaluate", {"task": "t", "code": "c"}),
            }
            return writes, await client.call_tool("recall", {"task": "deploy the app"})

    writes, recalled = run(talk)
    for name, answer in writes.items():
        assert answer.is_error, name
        assert answer.content[0].text == (
            "Not allowed. This needs the editor role; this key acts as reader."
        )
        assert answer.structured_content["error"]["errors"][0]["code"] == "permission_denied"
    assert result_json(recalled)["matches"][0]["pattern_id"] == pattern.pattern_id
    stored = Pattern.objects.get(pk=pattern.pattern_id)
    assert Pattern.objects.count() == 1 and not stored.archived and stored.eval_count == 0
    refused = AuditEntry.objects.filter(api_key_name=reader.key.name, action=3).exclude(
        additional_data__outcome="ok"
    )
    assert sorted(e.additional_data["tool"] for e in refused) == sorted(writes)


def test_bad_arguments_are_tool_errors_naming_the_field(asgi_server, editor):
    async def talk():
        async with http_client(asgi_server, editor.secret) as client:
            call = client.call_tool
            return [
                await call("recall", {"task": "x" * 20_001}),
                await call("recall", {"task": "t", "limit": "many"}),
                await call("recall", {"task": "t", "topk": 3}),
                await call("learn", {"task": "t"}),
                await call("learn", {"task": "t", "code": "c", "metadata": {"a": "\u0000"}}),
                await call("learn", {"task": "t", "code": "c", "eval_score": 11}),
                await call("forget_pattern", {"pattern_id": 987654}),
                await call("get_skill", {"skill_id": -1}),
                await call("no_such_tool", {}),
                await call("recall", {"task": "still serving"}),
            ]

    *refused, after = run(talk)
    texts = [answer.content[0].text for answer in refused]
    assert all(answer.is_error for answer in refused)
    assert texts[0] == (
        "Invalid arguments. task: Ensure this field has no more than 20000 characters."
    )
    assert texts[1] == "Invalid arguments. limit: Expected an integer."
    assert texts[2] == "Invalid arguments. topk: Unknown field."
    assert texts[3] == "Invalid arguments. code: This field is required."
    assert texts[4].startswith("Invalid arguments. metadata.a: Contains the null character")
    assert "eval_score: Ensure this value is less than or equal to 10." in texts[5]
    assert texts[6] == "Not found. Pattern 987654 does not exist in acme/support."
    assert "skill_id: Ensure this value is greater than or equal to 1." in texts[7]
    assert texts[8].startswith("Not found. No tool named 'no_such_tool'")
    assert not after.is_error and Pattern.objects.count() == 0


def test_every_call_is_audited_with_the_key_and_the_transport(asgi_server, editor):
    async def talk():
        async with http_client(asgi_server, editor.secret) as client:
            learned = await client.call_tool("learn", {"task": "sort a list", "code": "sorted"})
            await client.call_tool("recall", {"task": "sort a list"})
            await client.read_resource("engramia://project/metrics")
            return result_json(learned)["pattern_id"]

    pattern_id = run(talk)
    calls = AuditEntry.objects.filter(action=AuditEntry.Action.ACCESS).order_by("id")
    assert [(e.additional_data.get("tool") or e.additional_data["resource"]) for e in calls] == [
        "learn",
        "recall",
        "engramia://project/metrics",
    ]
    for entry in calls:
        assert entry.actor == editor.user and entry.actor_email == "editor@acme.test"
        assert entry.api_key_name == editor.key.name
        assert entry.project_id == editor.project.pk
        assert entry.additional_data["transport"] == "mcp-http"
        assert entry.additional_data["outcome"] == "ok"
    assert calls[1].additional_data["pattern_ids"] == [pattern_id]  # what recall disclosed
    # The write itself is audited by the service, stamped with the same key and transport.
    created = AuditEntry.objects.get(
        content_type__model="pattern", object_pk=str(pattern_id), action=0
    )
    assert created.api_key_name == editor.key.name
    assert created.additional_data["transport"] == "mcp-http"
    assert created.cid == calls[0].cid  # one request id for the call and what it changed
    admin = make_persona("admin@acme.test", editor.project, "admin")
    listed = admin.client().get("/v1/audit", {"action": "access"}).json()["results"]
    assert {entry["transport"] for entry in listed} == {"mcp-http"}


def _post(url, headers, payload=None):
    body = payload or {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-11-25",
        **headers,
    }
    return httpx2.post(f"{url}/mcp", json=body, headers=headers, timeout=30)


def test_keys_are_checked_like_the_api(asgi_server, owner, outsider):
    from tenants.services import create_api_key

    wide = create_api_key(
        user=owner.user, tenant=owner.project.tenant, project=None, name="wide", role="owner",
        actor=None,
    )  # fmt: skip
    bearer = {"Authorization": f"Bearer {owner.secret}"}
    missing = _post(asgi_server, {})
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert _post(asgi_server, {"Authorization": "Bearer eng_nope_nope"}).status_code == 401
    assert _post(asgi_server, {"Authorization": "Basic abc"}).status_code == 401
    unnamed = _post(asgi_server, {"Authorization": f"Bearer {wide.secret}"})
    assert unnamed.status_code == 400
    assert unnamed.json()["errors"][0]["attr"] == "X-Engramia-Project"
    named = {"Authorization": f"Bearer {wide.secret}", "X-Engramia-Project": "support"}
    assert _post(asgi_server, named).status_code == 200
    foreign = {"Authorization": f"Bearer {outsider.secret}", "X-Engramia-Project": "support"}
    assert _post(asgi_server, foreign).status_code == 404
    assert _post(asgi_server, {**bearer, "Host": "evil.example"}).status_code == 400
    assert httpx2.post(f"{asgi_server}/mcp/other", headers=bearer).status_code == 404
    listed = _post(asgi_server, bearer)
    assert listed.status_code == 200 and len(listed.json()["result"]["tools"]) == 8


def test_the_handshake_era_client_works_too(asgi_server, editor):
    """The initialize handshake (what the Agents SDK's MCPServerStreamableHttp speaks)."""

    async def talk():
        async with http_client(asgi_server, editor.secret, mode="legacy") as client:
            await client.call_tool("learn", {"task": "ping a host", "code": "ping -c1"})
            return await client.call_tool("recall", {"task": "ping a host"})

    assert result_json(run(talk))["matches"][0]["code"] == "ping -c1"


def test_failed_keys_are_throttled_across_the_api_and_mcp(asgi_server, owner):
    from django.core.cache import cache
    from django.test import override_settings
    from rest_framework.test import APIClient

    guess = {"Authorization": "Bearer eng_000000000000_guessed-secret"}
    rest = APIClient(REMOTE_ADDR="127.0.0.1")
    rest.credentials(HTTP_AUTHORIZATION=guess["Authorization"])
    cache.clear()
    try:
        with override_settings(ENGRAMIA_AUTH_FAILURE_THROTTLE="3/min"):
            failures = [_post(asgi_server, guess).status_code for _ in range(2)]
            failures.append(rest.get("/v1/project").status_code)
            # The address's failures count on both surfaces; now even a right key waits.
            throttled = _post(asgi_server, {"Authorization": f"Bearer {owner.secret}"})
    finally:
        cache.clear()
    assert failures == [401, 401, 401]
    assert throttled.status_code == 429 and 1 <= int(throttled.headers["Retry-After"]) <= 60
    assert throttled.json()["errors"][0]["code"] == "throttled"
