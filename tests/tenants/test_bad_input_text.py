"""NUL and lone surrogates anywhere in a request are one 400 naming the field, never a 500.

PostgreSQL cannot store U+0000, and a lone surrogate (JSON "\\ud800") is not text at all; both
are refused once, when the request is read: in JSON bodies (values and keys, at any depth), in
multipart form fields, in query parameters and in path parameters.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.pdf import make_pdf

BAD = {"nul": "a\x00b", "surrogate": "a\ud800b"}
# The codes DRF's own CharField uses for the same refusals.
CODES = {"nul": "null_characters_not_allowed", "surrogate": "surrogate_characters_not_allowed"}

# (method, path template, a valid body); every string value and every key below is tried.
BODIES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "PATCH",
        "/v1/project",
        {
            "name": "n",
            "instructions": "i",
            "read_path": "engramia",
            "llm_provider": "none",
            "llm_model": "m",
            "reason": "r",
            "embedding_model": "hash",
        },
    ),
    (
        "POST",
        "/v1/keys",
        {"name": "k", "role": "reader", "project": "support", "expires_at": "2099-01-01T00:00Z"},
    ),
    (
        "POST",
        "/v1/learn",
        {
            "task": "t",
            "code": "c",
            "output": "o",
            "source": "api",
            "run_id": "r",
            "external_id": "e",
            "created_at": "2024-01-01T00:00:00Z",
            "on_duplicate": "skip",
            "metadata": {"team": {"names": ["x", {"lead": "y"}]}},
        },
    ),
    ("POST", "/v1/recall", {"task": "t", "source": "api"}),
    ("POST", "/v1/evaluate", {"task": "t", "code": "c", "output": "o"}),
    ("POST", "/v1/outcomes", {"pattern_ids": [], "score": 1, "feedback": "f"}),
    ("POST", "/v1/aging", {"unused": "x"}),
    (
        "PATCH",
        "/v1/patterns/{pattern}",
        {"task": "t", "code": "c", "output": "o", "metadata": {"k": ["v", {"w": "x"}]}},
    ),
    (
        "POST",
        "/v1/patterns/{pattern}/evaluations",
        {"score": 1, "feedback": "f", "evaluator": "human"},
    ),
    (
        "POST",
        "/v1/documents",
        {"name": "n", "text": "t", "content_type": "text/plain", "external_id": "e"},
    ),
    (
        "POST",
        "/v1/skills",
        {
            "name": "tool",
            "description": "d",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            "tags": ["a"],
            "visibility": "project",
        },
    ),
    ("PATCH", "/v1/skills/{skill}", {"description": "d", "tags": ["a"]}),
    (
        "POST",
        "/v1/skills/{skill}/evaluations",
        {"score": 1, "feedback": "f", "evaluator": "human"},
    ),
    (
        "POST",
        "/v1/sessions/{session}/items",
        {"items": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]},
    ),
    ("POST", "/v1/sessions/{session}/pop", {"unused": "x"}),
]

# GET (and one POST) routes with the query parameters each reads.
QUERIES: list[tuple[str, str, list[str]]] = [
    ("GET", "/v1/patterns", ["archived", "source", "run_id", "q", "min_eval", "page"]),
    ("GET", "/v1/audit", ["action", "actor", "object_type", "since", "until", "page"]),
    ("GET", "/v1/jobs", ["status", "kind", "page"]),
    ("GET", "/v1/skills", ["q", "tags", "name", "scope", "limit", "explain", "eval_weighted"]),
    ("GET", "/v1/documents", ["page", "page_size"]),
    ("GET", "/v1/keys", ["page"]),
    ("GET", "/v1/feedback", ["limit"]),
    ("GET", "/v1/metrics", ["unknown"]),
    ("GET", "/v1/project", ["unknown"]),
    ("GET", "/v1/sessions/{session}/items", ["limit"]),
    ("GET", "/v1/skills/{skill}", ["unknown"]),
    ("GET", "/v1/skills/{skill}/tool", ["format"]),
    ("GET", "/v1/skills/{skill}/versions", ["page"]),
    ("GET", "/v1/patterns/{pattern}", ["unknown"]),
    ("GET", "/v1/jobs/{job}", ["unknown"]),
    ("POST", "/v1/import/assistants", ["group_by", "eval_score", "dry_run"]),
]

# Routes with a path parameter, the bad value in place of it, and the parameter's name.
PATHS: list[tuple[str, str, str]] = [
    ("GET", "/v1/sessions/{bad}/items", "session_id"),
    ("POST", "/v1/sessions/{bad}/items", "session_id"),
    ("POST", "/v1/sessions/{bad}/pop", "session_id"),
    ("DELETE", "/v1/sessions/{bad}", "session_id"),
    ("GET", "/v1/skills/{bad}", "pk"),
    ("GET", "/v1/skills/{bad}/tool", "pk"),
    ("PATCH", "/v1/skills/{bad}", "pk"),
    ("GET", "/v1/patterns/{bad}", "pk"),
    ("DELETE", "/v1/documents/{bad}", "pk"),
    ("DELETE", "/v1/keys/{bad}", "pk"),
]


@pytest.fixture
def ids(owner):
    """Ids of a pattern, a skill, a job and a session of the owner's project."""
    from jobs.services import submit_job
    from memory.services import learn_pattern
    from skills.services import register_skill

    project = owner.project
    return {
        "pattern": learn_pattern(project=project, task="t", code="c", actor=None).pattern_id,
        "skill": register_skill(
            project=project, name="known", description="d", actor=owner.user
        ).pk,
        "job": submit_job(project=project, kind="aging", params={}, actor=owner.user).pk,
        "session": "chat",
    }


def _leaves(value: Any, path: str = "") -> list[tuple[str, tuple[Any, ...], bool]]:
    """(dotted path, access path, is_key) of every string value and every key in value."""
    found: list[tuple[str, tuple[Any, ...], bool]] = []

    def walk(node: Any, dotted: str, access: tuple[Any, ...]) -> None:
        if isinstance(node, str):
            found.append((dotted, access, False))
        elif isinstance(node, dict):
            for key, inner in node.items():
                child = f"{dotted}.{key}" if dotted else key
                found.append((dotted, (*access, key), True))
                walk(inner, child, (*access, key))
        elif isinstance(node, list):
            for index, inner in enumerate(node):
                walk(inner, f"{dotted}.{index}", (*access, index))

    walk(value, path, ())
    return found


def _poisoned(body: Any, access: tuple[Any, ...], is_key: bool, bad: str) -> Any:
    """A deep copy of body with the value (or the key) at access replaced by bad."""
    copy = json.loads(json.dumps(body))
    node = copy
    for step in access[:-1]:
        node = node[step]
    last = access[-1]
    if is_key:
        node[bad] = node.pop(last)
    else:
        node[last] = bad
    return copy


def _client(persona: Any) -> Any:
    client = persona.client()
    client.raise_request_exception = False  # a 500 is an answer to report, not an exception
    return client


def _send(client: Any, method: str, path: str, body: Any) -> Any:
    # json.dumps escapes a lone surrogate as \ud800, as a JavaScript client would send it.
    return client.generic(method, path, json.dumps(body), content_type="application/json")


def _refusal(response: Any) -> tuple[int, list[Any]]:
    errors = response.json().get("errors", []) if response.status_code < 500 else []
    return response.status_code, [(e["code"], e["attr"]) for e in errors]


@pytest.mark.parametrize("kind", sorted(BAD))
@pytest.mark.parametrize("method, template, body", BODIES, ids=[f"{m} {p}" for m, p, _ in BODIES])
def test_bad_characters_in_any_json_string_are_a_400_naming_the_field(
    kind, method, template, body, owner, ids
):
    client = _client(owner)
    path = template.format(**ids)
    wrong = []
    for dotted, access, is_key in _leaves(body):
        response = _send(client, method, path, _poisoned(body, access, is_key, BAD[kind]))
        status, errors = _refusal(response)
        if is_key:  # the key itself is named, escaped, under its parent's path
            good = status == 400 and len(errors) == 1 and errors[0][1].startswith(dotted or "")
            good = good and "\\u" in errors[0][1]
        else:
            good = status == 400 and errors == [(CODES[kind], dotted)]
        if not good:
            wrong.append((dotted, "key" if is_key else "value", status, errors))
    assert wrong == []


def test_a_surrogate_pair_is_an_ordinary_character(owner):
    response = _send(_client(owner), "POST", "/v1/learn", {"task": "\U0001f600", "code": "c"})
    assert response.status_code == 201


def test_the_refusal_names_the_character_and_never_echoes_it(owner):
    response = _send(_client(owner), "POST", "/v1/learn", {"task": "t\x00", "code": "c"})
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["attr"] == "task" and "U+0000" in error["detail"]
    key = _send(_client(owner), "POST", "/v1/learn", {"task": "t", "code": "c", "\ud800": 1})
    assert key.status_code == 400 and key.json()["errors"][0]["attr"] == "\\ud800"


@pytest.mark.parametrize("kind", sorted(BAD))
@pytest.mark.parametrize(
    "method, template, names", QUERIES, ids=[f"{m} {p}" for m, p, _ in QUERIES]
)
def test_bad_characters_in_query_parameters_are_a_400_naming_the_parameter(
    kind, method, template, names, owner, ids
):
    from urllib.parse import quote

    client = _client(owner)
    path = template.format(**ids)
    wrong = []
    for name in names:
        # A lone surrogate cannot be percent-encoded as UTF-8: send the bytes it would be.
        value = "a%00b" if kind == "nul" else "a%ED%A0%80b"
        response = client.generic(method, f"{path}?{quote(name)}={value}")
        status, errors = _refusal(response)
        if kind == "nul" and (status, errors) != (400, [(CODES["nul"], name)]):
            wrong.append((name, status, errors))
        if kind == "surrogate" and status >= 500:  # decoded as U+FFFD: an ordinary value
            wrong.append((name, status, errors))
    assert wrong == []


def test_a_bad_query_parameter_name_is_named_escaped(owner):
    response = _client(owner).get("/v1/patterns?a%00b=1")
    assert _refusal(response) == (400, [(CODES["nul"], "a\\u0000b")])


@pytest.mark.parametrize("method, template, name", PATHS, ids=[f"{m} {p}" for m, p, _ in PATHS])
def test_bad_characters_in_path_parameters_are_a_400_naming_the_parameter(
    method, template, name, owner, ids
):
    response = _client(owner).generic(method, template.format(bad="a%00b"))
    assert _refusal(response) == (400, [(CODES["nul"], name)])


def test_a_bad_project_header_is_a_400_naming_the_header(owner):
    response = _client(owner).get("/v1/project", HTTP_X_ENGRAMIA_PROJECT="sup\x00port")
    assert _refusal(response) == (400, [(CODES["nul"], "X-Engramia-Project")])


def test_bad_characters_in_multipart_fields_are_a_400_naming_the_field(owner):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = _client(owner)
    for field in ("name", "external_id"):
        upload = SimpleUploadedFile("notes.md", b"# hello", content_type="text/markdown")
        response = client.post(
            "/v1/documents", {"file": upload, field: "a\x00b"}, format="multipart"
        )
        assert _refusal(response) == (400, [(CODES["nul"], field)]), field
    upload = SimpleUploadedFile("no\x00tes.pdf", make_pdf([["hi"]]), content_type="text/plain")
    response = client.post("/v1/documents", {"file": upload}, format="multipart")
    assert response.status_code in (201, 400)
    if response.status_code == 400:
        assert _refusal(response) == (400, [(CODES["nul"], "file")])
