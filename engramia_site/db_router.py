"""Read replicas: reads that may lag go to a streaming replica, everything else to the primary.

Routing is opt-in per unit of work. The request middleware (`tenants.replica_pinning`)
or SDK local mode opens a `RoutingState` that allows replica reads for a read-only call whose
caller has not written lately; without one (job workers, commands, migrations, writes) every
query goes to the primary. Inside a transaction, or once the unit of work has written, reads go
to the primary too, so a caller reads what it just wrote. A replica that cannot be reached is
skipped for `RETRY_SECONDS` (reads fall back to the primary) instead of failing requests.

Raw SQL bypasses routers: services that read with a cursor take `read_connection(Model)`.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

logger = logging.getLogger(__name__)

PRIMARY = DEFAULT_DB_ALIAS
# How long an unreachable replica is left out before a request tries it again.
RETRY_SECONDS = 10.0
# Coordination state that must never be read stale: the job queue and login sessions.
PRIMARY_ONLY_APPS = frozenset({"jobs", "django_q", "sessions"})


@dataclass
class RoutingState:
    """Whether the current unit of work may read from a replica, and which one serves it."""

    allowed: bool
    wrote: bool = False
    alias: str | None = None  # chosen at the first routed read, then kept for the whole unit


_state: ContextVar[RoutingState | None] = ContextVar("engramia_replica_routing", default=None)
_down_until: dict[str, float] = {}


@contextlib.contextmanager
def replica_reads(*, allowed: bool = True) -> Iterator[RoutingState]:
    """Let reads in this block go to a replica (allowed=False: a block that must not)."""
    state = RoutingState(allowed=allowed and bool(settings.DATABASE_REPLICAS))
    token = _state.set(state)
    try:
        yield state
    finally:
        _state.reset(token)


def read_connection(model: type[Model]) -> BaseDatabaseWrapper:
    """The connection a read of model uses now; for raw SQL, which routers never see."""
    return connections[router.db_for_read(model)]


def replica_is_down(alias: str) -> bool:
    """Whether alias failed its last connection attempt less than RETRY_SECONDS ago."""
    return _down_until.get(alias, 0.0) > time.monotonic()


def forget_replica_failures() -> None:
    """Try every replica again at the next read (after a replica is repaired)."""
    _down_until.clear()


def _reachable(alias: str) -> bool:
    """Connect to alias if needed; on failure leave it out for RETRY_SECONDS."""
    if replica_is_down(alias):
        return False
    connection = connections[alias]
    try:
        # With persistent connections, a connection to a replica that has since gone away
        # would only fail at the query; check it here, where the primary can still step in.
        connection.close_if_health_check_failed()
        connection.ensure_connection()
    except DatabaseError as exc:
        _down_until[alias] = time.monotonic() + RETRY_SECONDS
        connection.close()
        logger.warning(
            "read replica %s is unreachable, reading from the primary for %ss: %s",
            alias,
            RETRY_SECONDS,
            str(exc).strip(),
        )
        return False
    return True


def _choose_replica() -> str:
    """A reachable replica, picked at random to spread the load; the primary if none is."""
    replicas = list(settings.DATABASE_REPLICAS)
    random.shuffle(replicas)
    for alias in replicas:
        if _reachable(alias):
            return alias
    return PRIMARY


class ReplicaRouter:
    """Reads to a replica when the unit of work allows it; writes and migrations to the primary."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        state = _state.get()
        if state is None or not state.allowed or state.wrote:
            return PRIMARY
        if model._meta.app_label in PRIMARY_ONLY_APPS or connections[PRIMARY].in_atomic_block:
            return PRIMARY
        if state.alias is None:
            state.alias = _choose_replica()
        return state.alias

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        state = _state.get()
        if state is not None:
            state.wrote = True  # what follows in this unit of work may read what it wrote
        return PRIMARY

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool:
        return True  # a replica holds the primary's rows: objects from either may be related

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool:
        return db == PRIMARY
