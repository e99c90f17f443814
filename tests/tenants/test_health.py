"""GET /v1/health reports the real database and pgvector."""

from rest_framework.test import APIClient


def test_health_reports_pgvector_at_least_0_8(db):
    response = APIClient().get("/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    major, minor = (int(part) for part in body["pgvector"].split(".")[:2])
    assert (major, minor) >= (0, 8)


def test_every_response_carries_a_request_id(db):
    response = APIClient().get("/v1/health", HTTP_X_REQUEST_ID="trace-123")
    assert response["X-Request-ID"] == "trace-123"
    fresh = APIClient().get("/v1/health", HTTP_X_REQUEST_ID="bad id with spaces")
    assert fresh["X-Request-ID"] != "bad id with spaces" and len(fresh["X-Request-ID"]) == 32


def test_unknown_api_path_is_a_json_404(db):
    response = APIClient().get("/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"


def test_schema_and_docs_are_served(db):
    schema = APIClient().get("/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/v1/project" in schema.json()["paths"]
    docs = APIClient().get("/v1/docs")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()
