"""Bad input gets a 4xx in the contract's error format, never a 500."""

from django.test import override_settings


def test_malformed_json_is_a_400(owner):
    response = owner.client().generic(
        "PATCH", "/v1/project", "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "validation_error" and body["errors"][0]["code"] == "parse_error"


def test_json_nested_too_deeply_for_the_parser_is_a_400_on_every_json_endpoint(owner):
    body = '{"task": ' + "[" * 100_000 + "]" * 100_000 + "}"
    for method, path in [
        ("POST", "/v1/recall"),
        ("POST", "/v1/learn"),
        ("PATCH", "/v1/project"),
        ("POST", "/v1/sessions/s/items"),
    ]:
        response = owner.client().generic(method, path, body, content_type="application/json")
        assert response.status_code == 400, (path, response.status_code)
        error = response.json()["errors"][0]
        assert error["code"] == "parse_error" and "nested too deeply" in error["detail"]


def test_unknown_fields_are_refused_by_name(owner):
    response = owner.client().patch("/v1/project", {"nmae": "typo"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"code": "unknown_field", "detail": "Unknown field.", "attr": "nmae"}
    ]


def test_non_object_body_is_a_400(owner):
    response = owner.client().post("/v1/keys", [1, 2], format="json")
    assert response.status_code == 400


def test_oversized_body_is_a_413(owner):
    with override_settings(MAX_REQUEST_BYTES=2048):
        response = owner.client().patch("/v1/project", {"name": "x" * 5000}, format="json")
    assert response.status_code == 413
    assert response.json()["errors"][0]["code"] == "request_too_large"


def test_unsupported_media_type_is_a_415(owner):
    response = owner.client().generic("PATCH", "/v1/project", "name=x", content_type="text/csv")
    assert response.status_code == 415


def test_malformed_authorization_headers_are_401(db):
    from rest_framework.test import APIClient

    for header in ("Bearer", "Token abc", "Bearer a b", "Bearer eng_nothing", "Bearer eng_abc_def"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        response = client.get("/v1/project")
        assert response.status_code == 401, header
        assert response.json()["type"] == "client_error"
    assert APIClient().get("/v1/project").status_code == 401


def test_throttled_requests_get_429_with_retry_after(owner, settings):
    from django.core.cache import cache
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    cache.clear()
    original = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = {**api_settings.DEFAULT_THROTTLE_RATES, "api_key": "3/min"}
    try:
        client = owner.client()
        codes = [client.get("/v1/project").status_code for _ in range(4)]
        assert codes[:3] == [200, 200, 200] and codes[3] == 429
        assert int(client.get("/v1/project")["Retry-After"]) > 0
    finally:
        SimpleRateThrottle.THROTTLE_RATES = original
        cache.clear()
