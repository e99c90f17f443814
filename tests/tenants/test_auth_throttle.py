"""Failed authentication is throttled per client address (ENGRAMIA_AUTH_FAILURE_THROTTLE)."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import override_settings
from rest_framework.test import APIClient

ATTACKER = "203.0.113.9"


def _client(secret: str, address: str = ATTACKER) -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture(autouse=True)
def fresh_counters():
    cache.clear()
    yield
    cache.clear()


@override_settings(ENGRAMIA_AUTH_FAILURE_THROTTLE="5/min")
def test_bad_keys_beyond_the_limit_get_429_with_retry_after(owner):
    guesser = _client("eng_000000000000_guessed-secret")
    statuses = [guesser.get("/v1/project").status_code for _ in range(5)]
    assert statuses == [401] * 5
    throttled = guesser.get("/v1/project")
    assert throttled.status_code == 429
    assert 1 <= int(throttled["Retry-After"]) <= 60
    body = throttled.json()
    assert body["type"] == "client_error"
    assert [error["code"] for error in body["errors"]] == ["throttled"]
    # While throttled the address cannot tell a right key from a wrong one.
    assert _client(owner.secret).get("/v1/project").status_code == 429


@override_settings(ENGRAMIA_AUTH_FAILURE_THROTTLE="5/min")
def test_a_good_key_from_another_address_still_works(owner):
    guesser = _client("eng_000000000000_guessed-secret")
    for _ in range(8):
        guesser.get("/v1/project")
    assert guesser.get("/v1/project").status_code == 429
    assert _client(owner.secret, "198.51.100.20").get("/v1/project").status_code == 200


@override_settings(ENGRAMIA_AUTH_FAILURE_THROTTLE="3/min")
def test_malformed_headers_count_and_good_requests_do_not(owner):
    for _ in range(10):  # successes never count
        assert _client(owner.secret).get("/v1/project").status_code == 200
    malformed = APIClient(REMOTE_ADDR=ATTACKER)
    malformed.credentials(HTTP_AUTHORIZATION="Token abc")
    assert [malformed.get("/v1/project").status_code for _ in range(4)] == [401, 401, 401, 429]


@override_settings(ENGRAMIA_AUTH_FAILURE_THROTTLE="")
def test_an_empty_setting_turns_the_throttle_off(owner):
    guesser = _client("eng_000000000000_guessed-secret")
    assert {guesser.get("/v1/project").status_code for _ in range(40)} == {401}
