"""/v1/schema says what the API does, and the API does what it says (found by the fuzz run).

Each test pins one disagreement the schema-driven fuzz (tests/test_schema_fuzz.py) found, so a
regression names itself without running the whole fuzz.
"""

from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.conversations.conftest import session_url

SHARED_ERRORS = {"400", "401", "404", "429", "503"}


@pytest.fixture(scope="module")
def api_schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "patch", "put", "delete"}
    ]


def test_the_schema_documents_only_v1_operations(api_schema):
    paths = set(api_schema["paths"])
    assert all(path.startswith("/v1/") for path in paths)
    assert not paths & {"/v1/docs", "/v1/redoc", "/v1/schema"}


def test_every_keyed_operation_documents_the_shared_errors_with_the_error_body(api_schema):
    for method, path, operation in _operations(api_schema):
        if path == "/v1/health":
            continue
        responses = operation["responses"]
        assert set(responses) >= SHARED_ERRORS, (method, path, sorted(responses))
        body = responses["401"]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/ApiError"}, (method, path)
        assert operation["security"] == [{"apiKey": []}], (method, path)


def test_writes_document_403_and_413_and_reads_of_a_reader_do_not_promise_403(api_schema):
    responses = {(m, p): set(o["responses"]) for m, p, o in _operations(api_schema)}
    assert {"403", "413"} <= responses[("POST", "/v1/learn")]
    assert "403" not in responses[("GET", "/v1/patterns")]
    assert "409" in responses[("POST", "/v1/skills")]
    assert "409" in responses[("POST", "/v1/sessions/{session_id}/items")]


def test_strict_bodies_say_unknown_fields_are_refused(api_schema):
    learn = api_schema["components"]["schemas"]["LearnRequest"]
    assert learn["additionalProperties"] is False
    assert learn["properties"]["metadata"]["type"] == "object"


def test_a_skill_in_a_plain_listing_needs_no_score(api_schema):
    item = api_schema["components"]["schemas"]["SkillListItem"]
    assert "score" in item["properties"] and "similarity" in item["properties"]
    assert "score" not in item.get("required", [])
    assert "similarity" not in item.get("required", [])


def test_options_and_allow_on_the_pop_route_leave_delete_out_but_delete_still_clears(editor):
    client = editor.client()
    client.post(
        session_url("chat", "items"), {"items": [{"role": "user", "content": "hi"}]}, format="json"
    )
    for action in ("pop", "items"):
        allow = client.options(session_url("chat", action))["Allow"]
        assert "DELETE" not in allow and "POST" in allow, (action, allow)
    # DELETE /v1/sessions/chat%2Fpop reaches the pop route as `chat` + /pop: it clears chat/pop.
    cleared = client.delete(session_url("chat/pop"))
    assert cleared.status_code == 200 and cleared.json()["session_id"] == "chat/pop"


def test_options_on_documents_is_answered(reader):
    response = reader.client().options("/v1/documents")
    assert response.status_code == 200


@pytest.mark.parametrize(
    "until",
    ["2026-01-01T00:00:00+16:35", "2026-02-30T00:00:00", "0001-01-01T00:00:00+01:00"],
)
def test_an_audit_time_postgresql_cannot_take_is_handled(owner, until):
    response = owner.client().get("/v1/audit", {"until": until})
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert response.json()["errors"][0]["attr"] == "until"


def test_a_created_at_with_an_offset_past_15_59_is_stored_in_utc(editor):
    response = editor.client().post(
        "/v1/learn",
        {"task": "t", "code": "c", "created_at": "2026-01-01T20:00:00+16:35"},
        format="json",
    )
    assert response.status_code == 201, response.content
    listed = editor.client().get("/v1/patterns").json()["results"][0]
    assert listed["created_at"] == "2026-01-01T03:25:00Z"


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"task": 7, "code": "c"}, "task"),
        ({"task": "t", "code": "c", "eval_score": "5"}, "eval_score"),
        ({"task": "t", "code": "c", "eval_score": True}, "eval_score"),
        ({"task": "t", "code": "c", "source": " api"}, "source"),
    ],
)
def test_json_of_the_wrong_type_is_refused_not_coerced(editor, body, attr):
    response = editor.client().post("/v1/learn", body, format="json")
    assert response.status_code == 400, response.content
    assert [error["attr"] for error in response.json()["errors"]] == [attr]


def test_recall_refuses_a_number_for_a_boolean(reader):
    response = reader.client().post(
        "/v1/recall", {"task": "t", "include_documents": 0}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "include_documents"


@pytest.mark.parametrize("page_size", ["abc", "0", "-3", "1.5"])
def test_a_bad_page_size_is_a_400_not_ignored(reader, page_size):
    response = reader.client().get("/v1/patterns", {"page_size": page_size})
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "page_size"


def test_a_page_size_over_the_cap_gives_the_cap_and_an_empty_one_the_default(reader):
    assert reader.client().get("/v1/patterns", {"page_size": "500"}).status_code == 200
    assert reader.client().get("/v1/patterns", {"page_size": ""}).status_code == 200


def test_a_skill_search_pages_its_matches(editor):
    from skills.services import register_skill

    for name in ("csv_reader", "csv_writer", "csv_sniffer"):
        register_skill(project=editor.project, name=name, description=f"{name} for CSV", actor=None)
    first = editor.client().get("/v1/skills", {"q": "csv", "page_size": 2}).json()
    assert first["count"] == 3 and len(first["results"]) == 2 and first["next"]
    assert all("score" in result for result in first["results"])
    second = editor.client().get(first["next"]).json()
    assert len(second["results"]) == 1


def test_a_job_error_is_documented_as_nullable(api_schema):
    error = api_schema["components"]["schemas"]["Job"]["properties"]["error"]
    assert error.get("nullable") is True
