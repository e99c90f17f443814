"""Request throttling: per API key, and failed authentication per client address."""

from __future__ import annotations

import math
import time
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

if TYPE_CHECKING:
    from rest_framework.views import APIView

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Limit each key (or, unauthenticated, each client address) to ENGRAMIA_API_THROTTLE."""

    scope = "api_key"

    def get_cache_key(self, request: Request, view: APIView) -> str:
        key = request.auth
        ident = f"key-{key.pk}" if key is not None else f"ip-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


def auth_failure_rate() -> tuple[int, int] | None:
    """ENGRAMIA_AUTH_FAILURE_THROTTLE as (failures, seconds), e.g. "30/min"; None when off."""
    rate = (getattr(settings, "ENGRAMIA_AUTH_FAILURE_THROTTLE", "") or "").strip()
    if not rate:
        return None
    count, _, period = rate.partition("/")
    if not count.isdigit() or not period or period[0] not in PERIODS:
        raise ImproperlyConfigured(
            f"ENGRAMIA_AUTH_FAILURE_THROTTLE={rate!r}: use <number>/<sec|min|hour|day>"
        )
    return int(count), PERIODS[period[0]]


def _cache_keys(address: str) -> tuple[str, str]:
    return f"engramia:auth-failures:{address}", f"engramia:auth-failures-since:{address}"


def _address(request: Request) -> str:
    # REMOTE_ADDR, not X-Forwarded-For: a header the client writes would let it pick its bucket.
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def auth_failure_wait(address: str) -> int | None:
    """Seconds an address over the failed-authentication limit must wait; None when under it."""
    rate = auth_failure_rate()
    if rate is None:
        return None
    limit, period = rate
    count_key, since_key = _cache_keys(address or "unknown")
    if (cache.get(count_key) or 0) < limit:
        return None
    since = cache.get(since_key)
    remaining = period - (time.time() - since) if since is not None else period
    return max(1, math.ceil(remaining))


def count_auth_failure(address: str) -> None:
    """Count one failed authentication against a client address (window from the first)."""
    rate = auth_failure_rate()
    if rate is None:
        return
    _, period = rate
    count_key, since_key = _cache_keys(address or "unknown")
    if cache.add(count_key, 1, period):
        cache.set(since_key, time.time(), period)
        return
    try:
        cache.incr(count_key)
    except ValueError:  # expired between add and incr: this failure opens a new window
        cache.add(count_key, 1, period)
        cache.set(since_key, time.time(), period)


def refuse_if_failing(request: Request) -> None:
    """429 with Retry-After, before any key is checked, for an address over the failure limit."""
    wait = auth_failure_wait(_address(request))
    if wait is not None:
        raise Throttled(wait=wait, detail="Too many failed authentications from this address.")


def record_auth_failure(request: Request) -> None:
    """Count one failed authentication against the request's client address."""
    count_auth_failure(_address(request))


def key_request_wait(key: Any) -> float | None:
    """Count one request of key against ENGRAMIA_API_THROTTLE (as the API does) for callers
    outside DRF (the MCP server); the seconds to wait when it is over the rate, else None."""
    throttle = ApiKeyRateThrottle()
    # The throttle reads only the key (request.auth) from what it is given.
    if throttle.allow_request(SimpleNamespace(auth=key, META={}), None):  # type: ignore[arg-type]
        return None
    return throttle.wait() or 1.0
