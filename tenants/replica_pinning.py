"""Read your own writes with replicas: a caller who wrote reads from the primary for a while.

A replica replays the primary's writes a little later (usually milliseconds). So that a caller
always finds what it just wrote, each write pins its principal (an API key, an admin user, an
SDK process) to the primary for ENGRAMIA_REPLICA_PIN_SECONDS. Pins live in Django's cache,
shared by every web process when ENGRAMIA_REDIS_URL is set. Other callers read from replicas
and see the write once it has been replayed.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from engramia_site.db_router import RoutingState, replica_reads
from tenants.services import KEY_PREFIX

# Methods that never write; POST /v1/recall takes a body but is read-only too.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
READ_ONLY_POSTS = frozenset({"/v1/recall"})
_PIN_KEY = "engramia:replica-pin:{}"
_HOST = socket.gethostname()


def pin_to_primary(principal: str) -> None:
    """Send principal's reads to the primary for the next REPLICA_PIN_SECONDS."""
    seconds = int(settings.REPLICA_PIN_SECONDS)
    cache.set(_PIN_KEY.format(principal), time.time() + seconds, timeout=seconds)


def pinned_to_primary(principal: str) -> bool:
    """Whether principal wrote within the last REPLICA_PIN_SECONDS."""
    until = cache.get(_PIN_KEY.format(principal))
    return until is not None and float(until) > time.time()


def process_principal() -> str:
    """This process as a principal (SDK local mode acts as its process, not as a key)."""
    return f"process:{_HOST}:{os.getpid()}"


@contextlib.contextmanager
def routed_call(principal: str | None, *, read_only: bool) -> Iterator[RoutingState]:
    """One unit of work: replica reads if read-only and unpinned; a write pins principal."""
    replicas = bool(settings.DATABASE_REPLICAS)
    allowed = replicas and read_only and not (principal and pinned_to_primary(principal))
    try:
        with replica_reads(allowed=allowed) as state:
            yield state
    finally:
        if replicas and principal and not read_only:
            pin_to_primary(principal)  # even after an error: part of the write may be committed


def _key_principal(authorization: str) -> str | None:
    """The API key a bearer header names (by its public prefix, as authentication finds it)."""
    parts = authorization.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    secret = parts[1]
    if not secret.startswith(KEY_PREFIX) or secret.count("_") < 2:
        return None
    return f"key:{secret[len(KEY_PREFIX) :].split('_', 1)[0]}"


def request_principal(request: HttpRequest, *, authenticated: bool = False) -> str | None:
    """Who the request acts as: its API key if it has one, else its admin session's user.

    authenticated=True answers only once authentication accepted the key (after the view).
    """
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        if authenticated and getattr(request, "auth", None) is None:
            return None
        return _key_principal(header)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return None


def is_read_only(request: HttpRequest) -> bool:
    """Whether the request's method and path promise no writes."""
    method = request.method or "GET"
    return method in SAFE_METHODS or (method == "POST" and request.path_info in READ_ONLY_POSTS)


class ReplicaRoutingMiddleware:
    """Route a read-only request's reads to a replica unless its caller wrote lately."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not settings.DATABASE_REPLICAS:
            return self.get_response(request)
        read_only = is_read_only(request)
        principal = request_principal(request)
        allowed = read_only and not (principal and pinned_to_primary(principal))
        with replica_reads(allowed=allowed):
            response = self.get_response(request)
        if not read_only:
            # Asked again: a login makes the session's user known only now.
            writer = request_principal(request, authenticated=True)
            if writer:
                pin_to_primary(writer)
        return response
