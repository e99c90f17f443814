"""Request throttling: per API key, and failed authentication per client address."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

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


def _cache_keys(request: Request) -> tuple[str, str]:
    # REMOTE_ADDR, not X-Forwarded-For: a header the client writes would let it pick its bucket.
    address = request.META.get("REMOTE_ADDR", "") or "unknown"
    return f"engramia:auth-failures:{address}", f"engramia:auth-failures-since:{address}"


def refuse_if_failing(request: Request) -> None:
    """429 with Retry-After, before any key is checked, for an address over the failure limit."""
    rate = auth_failure_rate()
    if rate is None:
        return
    limit, period = rate
    count_key, since_key = _cache_keys(request)
    if (cache.get(count_key) or 0) < limit:
        return
    since = cache.get(since_key)
    remaining = period - (time.time() - since) if since is not None else period
    raise Throttled(
        wait=max(1, math.ceil(remaining)),
        detail="Too many failed authentications from this address.",
    )


def record_auth_failure(request: Request) -> None:
    """Count one failed authentication against the client address (window from the first)."""
    rate = auth_failure_rate()
    if rate is None:
        return
    _, period = rate
    count_key, since_key = _cache_keys(request)
    if cache.add(count_key, 1, period):
        cache.set(since_key, time.time(), period)
        return
    try:
        cache.incr(count_key)
    except ValueError:  # expired between add and incr: this failure opens a new window
        cache.add(count_key, 1, period)
        cache.set(since_key, time.time(), period)
