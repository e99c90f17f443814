"""The leak suite: every endpoint, as the outsider and with revoked, expired, malformed keys.

An outsider (owner of tenant B) must get 404 for tenant A's objects and never see A's data in
collections; so must a sibling (owner of another project of tenant A) through its project key,
and through any key naming tenant A's project in X-Engramia-Project, without changing anything
there; dead or malformed keys get 401 everywhere. A new endpoint that is not listed here
fails `test_every_api_route_is_covered`.

The MCP server is held to the same: every tool and resource, over streamable HTTP with the
outsider's and the sibling's keys, and over stdio serving their projects, sees nothing of tenant
A and changes nothing there (`test_every_mcp_tool_and_resource_is_covered` keeps the list whole).
"""

from datetime import timedelta

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from conversations.models import SessionItem
from tenants.models import ApiKey
from tenants.services import revoke_api_key
from tests.conftest import make_persona

MARKER = "acme-private-marker"
SESSION = "support/ticket-42"

# (method, path template, body); {pattern}, {document}, {job}, {key}, {skill} are tenant A's ids;
# {session} is a session id tenant A uses: a key inside the caller's own project, not an object id.
ENDPOINTS = [
    ("GET", "/v1/project", None),
    ("PATCH", "/v1/project", {"name": "pwned"}),
    ("GET", "/v1/keys", None),
    ("POST", "/v1/keys", {"name": "x", "role": "reader"}),
    ("DELETE", "/v1/keys/{key}", None),
    ("POST", "/v1/keys/{key}/rotate", None),
    ("GET", "/v1/audit", None),
    ("POST", "/v1/learn", {"task": "t", "code": "c"}),
    ("POST", "/v1/recall", {"task": MARKER}),
    ("POST", "/v1/evaluate", {"task": "t", "code": "c", "pattern_id": "{pattern}"}),
    ("POST", "/v1/outcomes", {"pattern_ids": ["{pattern}"], "score": 0}),
    ("GET", "/v1/feedback", None),
    ("POST", "/v1/aging", {}),
    ("GET", "/v1/metrics", None),
    ("GET", "/v1/patterns", None),
    ("GET", "/v1/patterns/{pattern}", None),
    ("PATCH", "/v1/patterns/{pattern}", {"archived": True}),
    ("DELETE", "/v1/patterns/{pattern}", None),
    ("POST", "/v1/patterns/{pattern}/evaluations", {"score": 0}),
    ("GET", "/v1/documents", None),
    ("POST", "/v1/documents", {"name": "n", "text": "t"}),
    ("DELETE", "/v1/documents/{document}", None),
    ("POST", "/v1/import/assistants", None),
    ("GET", "/v1/jobs", None),
    ("GET", "/v1/jobs/{job}", None),
    ("POST", "/v1/jobs/{job}/cancel", None),
    ("GET", "/v1/skills", None),
    ("POST", "/v1/skills", {"name": "s", "description": "d", "parameters": {"type": "object"}}),
    ("GET", "/v1/skills/{skill}", None),
    ("PATCH", "/v1/skills/{skill}", {"description": "pwned"}),
    ("DELETE", "/v1/skills/{skill}", None),
    ("POST", "/v1/skills/{skill}/evaluations", {"score": 0}),
    ("GET", "/v1/skills/{skill}/tool", None),
    ("GET", "/v1/skills/{skill}/versions", None),
    ("GET", "/v1/sessions/{session}/items", None),
    ("POST", "/v1/sessions/{session}/items", {"items": [{"role": "user", "content": "hi"}]}),
    ("POST", "/v1/sessions/{session}/pop", None),
    ("DELETE", "/v1/sessions/{session}", None),
]
PUBLIC = {"/v1/health", "/v1/schema", "/v1/docs", "/v1/redoc"}


@pytest.fixture
def tenant_a_objects(owner):
    """One of everything in tenant A, each carrying MARKER where it has text."""
    from conversations.services import add_session_items
    from jobs.services import submit_job
    from memory.services import add_document, learn_pattern
    from skills.services import register_skill

    project = owner.project
    pattern = learn_pattern(
        project=project, task=f"{MARKER} task", code=f"{MARKER} code", eval_score=9, actor=None
    )
    document = add_document(project=project, name=f"{MARKER}.md", text=f"{MARKER} text", actor=None)
    job = submit_job(project=project, kind="aging", params={}, actor=owner.user)
    skill = register_skill(
        project=project,
        name="private_tool",
        description=f"{MARKER} skill",
        parameters={"type": "object", "properties": {}},
        actor=owner.user,
    )
    key = owner.client().post("/v1/keys", {"name": "spare", "role": "reader"}, format="json").json()
    add_session_items(
        project=project,
        session_id=SESSION,
        items=[
            {"role": "user", "content": f"{MARKER} question"},
            {"role": "assistant", "content": f"{MARKER} answer"},
        ],
        actor=None,
    )
    return {
        "pattern": pattern.pattern_id,
        "document": document.pk,
        "job": job.pk,
        "key": key["id"],
        "skill": skill.pk,
        "session": SESSION,
    }


def _fill(value, ids):
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


def _call(client, method, path, body):
    if path == "/v1/import/assistants":
        return client.generic(method, path, b'{"x": 1}\n', content_type="application/x-ndjson")
    return client.generic(
        method,
        path,
        "" if body is None else __import__("json").dumps(body),  # None would send b"None"
        content_type="application/json",
    )


@pytest.mark.parametrize(
    "method, template, body", ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS]
)
def test_outsider_never_sees_tenant_a(method, template, body, tenant_a_objects, outsider):
    path = _fill(template, tenant_a_objects)
    response = _call(outsider.client(), method, path, _fill(body, tenant_a_objects))
    assert response.status_code != 500
    assert MARKER.encode() not in response.content
    if "{session}" in template:  # the outsider's own project's (empty) session, never A's
        assert response.status_code in (200, 201), (path, response.content[:200])
        kept = SessionItem.objects.filter(project__tenant__slug="acme", session_id=SESSION)
        assert kept.count() == 2
        assert response.json().get("items", []) == [] and response.json().get("item") is None
    elif "{" in template:  # another tenant's object: indistinguishable from a missing one
        assert response.status_code == 404, (path, response.status_code, response.content[:200])
    if method == "POST" and template in ("/v1/evaluate", "/v1/outcomes"):
        assert response.status_code in (400, 200, 503)


@pytest.fixture
def sibling(project_a):
    """Owner of acme/billing only: same tenant as tenant A's objects, another project."""
    from tenants.services import ensure_project

    return make_persona(
        "owner@billing.test", ensure_project("acme", "billing", actor=None), "owner"
    )


def _sibling_clients(sibling):
    """The sibling's project key, that key naming support, and a tenant-wide key naming support."""
    from tenants.services import create_api_key

    wide = create_api_key(
        user=sibling.user,
        tenant=sibling.project.tenant,
        project=None,
        name="wide",
        role="owner",
        actor=None,
    )
    named = sibling.client()
    named.credentials(
        HTTP_AUTHORIZATION=f"Bearer {sibling.secret}", HTTP_X_ENGRAMIA_PROJECT="support"
    )
    wide_client = APIClient()
    wide_client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {wide.secret}", HTTP_X_ENGRAMIA_PROJECT="support"
    )
    return {"own": sibling.client(), "named": named, "wide": wide_client}


def _tenant_a_state(ids):
    """What acme/support holds: every object tenant_a_objects made, as it is now."""
    from jobs.models import Job
    from memory.models import Document, Pattern
    from skills.models import Skill
    from tenants.models import Project

    project = Project.objects.get(tenant__slug="acme", slug="support")
    pattern = Pattern.objects.filter(project=project, pk=ids["pattern"])
    skill = Skill.objects.filter(project=project, pk=ids["skill"])
    return (
        project.name,
        list(pattern.values_list("archived", "eval_score")),
        Pattern.objects.filter(project=project).count(),
        Document.objects.filter(pk=ids["document"], project=project).exists(),
        list(Job.objects.filter(project=project).values_list("pk", "cancel_requested")),
        list(skill.values_list("description", "evaluation_count", "version")),
        list(ApiKey.objects.filter(pk=ids["key"]).values_list("prefix", "revoked_at")),
        list(SessionItem.objects.filter(project=project).values_list("session_id", "item")),
    )


@pytest.mark.parametrize(
    "method, template, body", ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS]
)
def test_a_sibling_project_never_sees_tenant_a(method, template, body, tenant_a_objects, sibling):
    clients = _sibling_clients(sibling)
    before = _tenant_a_state(tenant_a_objects)
    path = _fill(template, tenant_a_objects)
    payload = _fill(body, tenant_a_objects)
    for name, client in clients.items():
        response = _call(client, method, path, payload)
        assert response.status_code != 500, (name, path)
        assert MARKER.encode() not in response.content, (name, path)
        if name != "own":  # naming a project the user does not hold: not visible at all
            assert response.status_code == 404, (name, path, response.content[:200])
        elif "{session}" in template:  # billing's own (empty) session of the same id
            assert response.status_code in (200, 201), (path, response.content[:200])
            assert response.json().get("items", []) == [] and response.json().get("item") is None
        elif "{" in template:
            assert response.status_code == 404, (path, response.status_code, response.content[:200])
    assert _tenant_a_state(tenant_a_objects) == before


@pytest.mark.parametrize("group_by", ["thread", "assistant"])
def test_a_sibling_cannot_import_into_tenant_a_by_naming_it(group_by, tenant_a_objects, sibling):
    from jobs.models import Job
    from jobs.services import run_job_inline

    before = _tenant_a_state(tenant_a_objects)
    lines = [
        {"thread_id": "support", "assistant_id": "support", "message_id": f"m{n}", "role": role,
         "text": f"planted {role}", "created_at": 1_700_000_000 + n}
        for n, role in enumerate(["user", "assistant"])
    ]  # fmt: skip
    body = "\n".join(__import__("json").dumps(line) for line in lines).encode()
    response = sibling.client().post(
        f"/v1/import/assistants?group_by={group_by}", body, content_type="application/x-ndjson"
    )
    for job in Job.objects.filter(kind="import_assistants"):
        run_job_inline(job)
    assert response.status_code == 403
    assert _tenant_a_state(tenant_a_objects) == before


@pytest.mark.parametrize("kind", ["revoked", "expired", "malformed", "missing"])
@pytest.mark.parametrize(
    "method, template, body", ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS]
)
def test_dead_keys_get_401_everywhere(kind, method, template, body, tenant_a_objects, owner):
    client = APIClient()
    if kind in ("revoked", "expired"):
        changes = (
            {"revoked_at": timezone.now()}
            if kind == "revoked"
            else {"expires_at": timezone.now() - timedelta(minutes=1)}
        )
        ApiKey.objects.filter(pk=owner.key.pk).update(**changes)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {owner.secret}")
    elif kind == "malformed":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {owner.secret[:-3]}xyz")
    response = _call(
        client, method, _fill(template, tenant_a_objects), _fill(body, tenant_a_objects)
    )
    assert response.status_code == 401
    assert MARKER.encode() not in response.content


def _routes(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _routes(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def test_every_api_route_is_covered():
    import re

    listed = {re.sub(r"\{[a-z]+\}", "ID", path) for _, path, _ in ENDPOINTS}
    checked = set()
    for route in _routes():
        if not route.startswith("v1/") or "format" in route:
            continue
        path = re.sub(r"\(\?P<\w+>[^)]*\)|<[^>]+>", "ID", route.replace("^", "").replace("$", ""))
        path = "/" + path
        if path in PUBLIC:
            continue
        assert path in listed, f"{path} is not in the leak suite"
        checked.add(path)
    assert checked == listed


# -- MCP: every tool and resource, over streamable HTTP (keys) and stdio (a project) ----------

# (tool, arguments); {pattern} and {skill} are tenant A's ids.
MCP_CALLS = [
    ("recall", {"task": MARKER, "include_documents": True, "explain": True}),
    ("learn", {"task": "t", "code": "c"}),
    ("evaluate", {"task": "t", "code": "c", "pattern_id": "{pattern}"}),
    ("record_outcome", {"pattern_ids": ["{pattern}"], "score": 0}),
    ("search_skills", {"q": MARKER, "scope": "all"}),
    ("search_skills", {"name": "private", "scope": "all"}),
    ("get_skill", {"skill_id": "{skill}"}),
    ("list_patterns", {"archived": "all", "q": MARKER}),
    ("list_patterns", {"archived": "all"}),
    ("forget_pattern", {"pattern_id": "{pattern}"}),
]
MCP_RESOURCES = ["engramia://project", "engramia://project/metrics"]


async def _mcp_answers(client, ids):
    """(name, text, is_error) for every tool call and resource read of the leak list."""
    answers = []
    for name, arguments in MCP_CALLS:
        result = await client.call_tool(name, _fill(arguments, ids))
        answers.append((name, result.content[0].text, result.is_error))
    for uri in MCP_RESOURCES:
        result = await client.read_resource(uri)
        answers.append((uri, result.contents[0].text, False))
    return answers


def _assert_nothing_of_tenant_a(answers, caller):
    import json

    for name, text, is_error in answers:
        assert MARKER not in text, (caller, name, text[:200])
        if name in ("get_skill", "forget_pattern"):  # A's object: as if it did not exist
            assert is_error and text.startswith("Not found."), (caller, name, text)
        if name == "evaluate":
            assert is_error and "pattern_id: No such pattern in this project." in text
        if name == "record_outcome":
            assert json.loads(text) == {"credited": 0}, (caller, text)
        if name == "engramia://project":
            assert json.loads(text)["slug"] != "support" or json.loads(text)["tenant"] != "acme"


def test_mcp_over_http_shows_nothing_of_tenant_a(asgi_server, tenant_a_objects, outsider, sibling):
    from tests.mcp.conftest import http_client, run

    before = _tenant_a_state(tenant_a_objects)
    for caller, persona in (("outsider", outsider), ("sibling", sibling)):

        async def talk(persona=persona):
            async with http_client(asgi_server, persona.secret) as client:
                return await _mcp_answers(client, tenant_a_objects)

        _assert_nothing_of_tenant_a(run(talk), caller)
    assert _tenant_a_state(tenant_a_objects) == before


def _mcp_post(base_url, headers):
    import httpx2

    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "recall", "arguments": {"task": MARKER}}}  # fmt: skip
    headers = {"Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-11-25", **headers}  # fmt: skip
    return httpx2.post(f"{base_url}/mcp", json=body, headers=headers, timeout=30)


def test_mcp_keys_naming_tenant_a_or_dead_get_nothing(
    asgi_server, tenant_a_objects, owner, sibling
):
    from tenants.services import create_api_key

    wide = create_api_key(user=sibling.user, tenant=sibling.project.tenant, project=None,
                          name="wide", role="owner", actor=None)  # fmt: skip
    refused = {
        "named": (_mcp_post(asgi_server, {"Authorization": f"Bearer {sibling.secret}",
                                          "X-Engramia-Project": "support"}), 404),
        "wide": (_mcp_post(asgi_server, {"Authorization": f"Bearer {wide.secret}",
                                         "X-Engramia-Project": "support"}), 404),
        "malformed": (_mcp_post(asgi_server, {"Authorization": f"Bearer {owner.secret[:-3]}x"}),
                      401),
        "missing": (_mcp_post(asgi_server, {}), 401),
    }  # fmt: skip
    # Revoked as the API and the admin do (the server thread drops the key's kept row).
    revoke_api_key(ApiKey.objects.get(pk=owner.key.pk), actor=owner.user)
    revoked = _mcp_post(asgi_server, {"Authorization": f"Bearer {owner.secret}"})
    refused["revoked"] = (revoked, 401)
    for name, (response, status) in refused.items():
        assert response.status_code == status, (name, response.status_code, response.text)
        assert MARKER not in response.text, name


def test_mcp_over_stdio_for_another_project_shows_nothing_of_tenant_a(
    transactional_db, tenant_a_objects, outsider, sibling
):
    from mcp import Client

    from tests.mcp.conftest import run, stdio_environment, stdio_parameters

    before = _tenant_a_state(tenant_a_objects)
    env = stdio_environment()
    for path in ("globex/research", "acme/billing"):

        async def talk(path=path):
            async with Client(stdio_parameters(path, env)) as client:
                return await _mcp_answers(client, tenant_a_objects)

        _assert_nothing_of_tenant_a(run(talk), path)
    assert _tenant_a_state(tenant_a_objects) == before


def test_every_mcp_tool_and_resource_is_covered():
    from engramia_mcp.server import RESOURCES
    from engramia_mcp.tools import TOOLS_BY_NAME

    assert {name for name, _ in MCP_CALLS} == set(TOOLS_BY_NAME)
    assert set(MCP_RESOURCES) == set(RESOURCES)
