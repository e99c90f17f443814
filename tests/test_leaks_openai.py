"""The leak suite of the Assistants-compatible API: every /openai/v1 route, as everyone but A.

As tests/test_leaks.py does for /v1: the outsider (tenant B) and a sibling (another project of
tenant A, through its own key, that key naming A's project in OpenAI-Project, and a tenant-wide
key naming it) get 404 for tenant A's assistants, threads, messages, runs, steps, files, vector
stores and batches, never see A's text, and change nothing of A's; dead keys get 401. A new
route that is not listed here fails `test_every_openai_route_is_covered`.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from tenants.models import ApiKey
from tests.assistants.openai.conftest import WEATHER_TOOL, fast_password_hashing, llm, run_jobs
from tests.conftest import make_persona
from tests.fakes.llm_servers import Reply
from tests.test_leaks import _routes

MARKER = "acme-private-marker"
API = "/openai/v1"
T = API + "/threads/{thread}"
R = T + "/runs/{run}"
V = API + "/vector_stores/{store}"

A_STORE = {"file_search": {"vector_store_ids": ["{store}"]}}
A_ATTACHMENT = {"role": "user", "content": "x", "attachments": [{"file_id": "{file}"}]}
A_CALL = {"tool_outputs": [{"tool_call_id": "{call}", "output": "x"}]}
ENDPOINTS = [
    ("GET", API + "/assistants", None),
    ("POST", API + "/assistants", {"model": "m", "tool_resources": A_STORE}),
    ("GET", API + "/assistants/{assistant}", None),
    ("POST", API + "/assistants/{assistant}", {"name": "pwned"}),
    ("DELETE", API + "/assistants/{assistant}", None),
    ("GET", API + "/threads", None),
    ("POST", API + "/threads", {"messages": [A_ATTACHMENT]}),
    ("POST", API + "/threads/runs", {"assistant_id": "{assistant}"}),
    ("GET", T, None),
    ("POST", T, {"metadata": {"k": "pwned"}}),
    ("DELETE", T, None),
    ("GET", T + "/messages", None),
    ("POST", T + "/messages", {"role": "user", "content": "pwned"}),
    ("GET", T + "/messages/{message}", None),
    ("POST", T + "/messages/{message}", {"metadata": {"k": "pwned"}}),
    ("DELETE", T + "/messages/{message}", None),
    ("GET", T + "/runs", None),
    ("POST", T + "/runs", {"assistant_id": "{assistant}"}),
    ("GET", R, None),
    ("POST", R, {"metadata": {"k": "pwned"}}),
    ("POST", R + "/cancel", None),
    ("POST", R + "/submit_tool_outputs", A_CALL),
    ("GET", R + "/steps", None),
    ("GET", R + "/steps/{step}", None),
    ("GET", API + "/files", None),
    ("POST", API + "/files", None),
    ("GET", API + "/files/{file}", None),
    ("DELETE", API + "/files/{file}", None),
    ("GET", API + "/files/{file}/content", None),
    ("GET", API + "/vector_stores", None),
    ("POST", API + "/vector_stores", {"file_ids": ["{file}"]}),
    ("GET", V, None),
    ("POST", V, {"name": "pwned"}),
    ("DELETE", V, None),
    ("POST", V + "/search", {"query": MARKER}),
    ("GET", V + "/files", None),
    ("POST", V + "/files", {"file_id": "{file}"}),
    ("GET", V + "/files/{file}", None),
    ("DELETE", V + "/files/{file}", None),
    ("POST", V + "/file_batches", {"file_ids": ["{file}"]}),
    ("GET", V + "/file_batches/{batch}", None),
    ("POST", V + "/file_batches/{batch}/cancel", None),
    ("GET", V + "/file_batches/{batch}/files", None),
]  # fmt: skip
IDS = [f"{method} {path}" for method, path, _ in ENDPOINTS]
__all__ = ["fast_password_hashing", "llm"]


@pytest.fixture
def tenant_a_objects(owner, llm):
    """One of everything in tenant A, its text carrying MARKER; a run waiting for tool outputs."""
    from assistants.models import Run, RunStep, Thread
    from assistants.openai.services import files, objects, runs

    project, actor = owner.project, owner.user
    file = files.create_file(
        project=project,
        name=f"{MARKER}.md",
        data=f"{MARKER} secret".encode(),
        purpose="assistants",
        actor=actor,
    )
    store = files.create_vector_store(project=project, name=MARKER, file_ids=[], actor=actor)
    batch = files.create_file_batch(store=store, file_ids=[file.public_id], actor=actor)
    assistant = objects.create_assistant(
        project=project, values={"model": "m", "name": MARKER, "tools": [WEATHER_TOOL]}, actor=actor
    )
    thread = objects.create_thread(
        project=project,
        values={
            "metadata": {"k": MARKER},
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": {"value": f"{MARKER} question", "annotations": []}}
                    ],
                }
            ],
        },
        actor=actor,
    )
    llm.enqueue(Reply.calling("get_weather", {"city": MARKER}))
    run = runs.start_run(
        project=thread.project,
        thread_id=thread.public_id,
        values={"assistant_id": assistant.public_id},
        stream=False,
        actor=actor,
    )
    run_jobs()
    run = Run.objects.get(pk=run.pk)
    assert run.status == "requires_action"
    return {
        "assistant": assistant.public_id,
        "thread": thread.public_id,
        "message": Thread.objects.get(pk=thread.pk).messages.get().public_id,
        "run": run.public_id,
        "step": RunStep.objects.get(run=run).public_id,
        "call": run.required_action["submit_tool_outputs"]["tool_calls"][0]["id"],
        "file": file.public_id,
        "store": store.public_id,
        "batch": batch.public_id,
    }


def _fill(value, ids):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {key: _fill(inner, ids) for key, inner in value.items()}
    if isinstance(value, list):
        return [_fill(inner, ids) for inner in value]
    return value


def _call(client, method, path, body):
    if method == "POST" and path == API + "/files":
        upload = SimpleUploadedFile("x.txt", b"outsider text")
        return client.post(path, {"file": upload, "purpose": "assistants"}, format="multipart")
    payload = "" if body is None else json.dumps(body)
    return client.generic(method, path, payload, content_type="application/json")


def _tenant_a_state():
    """What acme/support holds of the compatible API, as it is now."""
    from assistants.models import (
        Assistant,
        File,
        Message,
        Run,
        RunStep,
        Thread,
        VectorStore,
        VectorStoreFile,
    )

    scope = {"project__tenant__slug": "acme", "project__slug": "support"}
    return (
        list(Assistant.objects.filter(**scope).values_list("public_id", "name")),
        list(Thread.objects.filter(**scope).values_list("public_id", "metadata")),
        list(Message.objects.filter(**scope).values_list("public_id", "metadata")),
        list(Run.objects.filter(**scope).values_list("public_id", "status", "metadata")),
        list(RunStep.objects.filter(**scope).values_list("public_id", "status")),
        list(File.objects.filter(**scope).values_list("public_id", flat=True)),
        list(VectorStore.objects.filter(**scope).values_list("public_id", "name")),
        list(VectorStoreFile.objects.filter(**scope).values_list("file_id", "status")),
    )


def _check_not_visible(response, template, body, where):
    assert response.status_code != 500, where
    assert MARKER.encode() not in response.content, where
    if "{" in template:  # another tenant's object: indistinguishable from a missing one
        assert response.status_code == 404, (where, response.status_code, response.content[:200])
    elif body is not None and "{" in json.dumps(body):  # naming another tenant's object
        assert response.status_code in (400, 404), (where, response.content[:200])


@pytest.mark.parametrize("method, template, body", ENDPOINTS, ids=IDS)
def test_outsider_never_sees_tenant_a(method, template, body, tenant_a_objects, outsider):
    before = _tenant_a_state()
    path = _fill(template, tenant_a_objects)
    response = _call(outsider.client(), method, path, _fill(body, tenant_a_objects))
    _check_not_visible(response, template, body, path)
    assert _tenant_a_state() == before


@pytest.fixture
def sibling(project_a):
    """Owner of acme/billing only: same tenant as tenant A's objects, another project."""
    from tenants.services import ensure_project

    return make_persona(
        "owner@billing.test", ensure_project("acme", "billing", actor=None), "owner"
    )


def _sibling_clients(sibling):
    """The sibling's project key, that key naming support, and a tenant-wide key naming it."""
    from tenants.services import create_api_key

    wide = create_api_key(
        user=sibling.user,
        tenant=sibling.project.tenant,
        project=None,
        name="wide",
        role="owner",
        actor=None,
    )
    named = APIClient()
    named.credentials(HTTP_AUTHORIZATION=f"Bearer {sibling.secret}", HTTP_OPENAI_PROJECT="support")
    wide_client = APIClient()
    wide_client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {wide.secret}", HTTP_OPENAI_PROJECT="support"
    )
    return {"own": sibling.client(), "named": named, "wide": wide_client}


@pytest.mark.parametrize("method, template, body", ENDPOINTS, ids=IDS)
def test_a_sibling_project_never_sees_tenant_a(method, template, body, tenant_a_objects, sibling):
    before = _tenant_a_state()
    path = _fill(template, tenant_a_objects)
    payload = _fill(body, tenant_a_objects)
    for name, client in _sibling_clients(sibling).items():
        response = _call(client, method, path, payload)
        if name == "own":
            _check_not_visible(response, template, body, (name, path))
        else:  # naming a project the user does not hold: not visible at all
            assert MARKER.encode() not in response.content, (name, path)
            assert response.status_code == 404, (name, path, response.content[:200])
    assert _tenant_a_state() == before


@pytest.mark.parametrize("kind", ["revoked", "expired", "malformed", "missing"])
@pytest.mark.parametrize("method, template, body", ENDPOINTS, ids=IDS)
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
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert MARKER.encode() not in response.content


def test_every_openai_route_is_covered():
    import re

    listed = {(method, re.sub(r"\{[a-z]+\}", "ID", path)) for method, path, _ in ENDPOINTS}
    listed_paths = {path for _, path in listed}
    checked = set()
    for route in _routes(get_resolver()):
        if not route.startswith("openai/v1/"):
            continue
        path = "/" + re.sub(r"<[^>]+>", "ID", route)
        assert path in listed_paths, f"{path} is not in the leak suite"
        checked.add(path)
    assert checked == listed_paths
