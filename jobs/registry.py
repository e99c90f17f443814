"""The registry of job kinds: `@job_kind("learn", timeout=300)` on a `handler(job, ctx) -> dict`.

Apps register their kinds in AppConfig.ready(); extra modules named in ENGRAMIA_JOB_MODULES are
imported at startup by every process (web, worker, CLI), which is how tests add test-only kinds.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobs.conf import default_timeout_seconds, job_modules
from jobs.context import JobContext
from jobs.exceptions import (
    JobCancelled,
    JobFailed,
    TransientJobError,
    UnknownJobKind,
)

if TYPE_CHECKING:
    from jobs.models import Job

__all__ = [
    "JobCancelled",
    "JobContext",
    "JobFailed",
    "JobKind",
    "TransientJobError",
    "get_job_kind",
    "import_job_modules",
    "job_kind",
    "job_kinds",
]

Handler = Callable[["Job", JobContext], Any]


@dataclass(frozen=True)
class JobKind:
    """A registered kind: its handler, time limit (seconds) and attempts."""

    name: str
    handler: Handler
    timeout: int | None
    max_attempts: int

    @property
    def time_limit(self) -> int:
        """The effective time limit: the kind's own, or the cluster's."""
        return self.timeout or default_timeout_seconds()


_kinds: dict[str, JobKind] = {}


def _handler_path(handler: Handler) -> str:
    return f"{getattr(handler, '__module__', '?')}.{getattr(handler, '__qualname__', '?')}"


def job_kind(
    name: str, *, timeout: int | None = None, max_attempts: int = 3
) -> Callable[[Handler], Handler]:
    """Register the decorated `handler(job, ctx) -> dict` as the kind name."""
    if not name or len(name) > 100:
        raise ValueError("a job kind needs a name of 1-100 characters")
    if timeout is not None and timeout < 1:
        raise ValueError("a job kind's timeout is a positive number of seconds")
    if not 1 <= max_attempts <= 100:
        raise ValueError("max_attempts must be between 1 and 100")

    def register(handler: Handler) -> Handler:
        existing = _kinds.get(name)
        # Re-importing the same module (autoreload, tests) registers the same handler again.
        if existing is not None and _handler_path(existing.handler) != _handler_path(handler):
            raise ValueError(
                f"job kind {name!r} is already registered by {_handler_path(existing.handler)}"
            )
        _kinds[name] = JobKind(
            name=name, handler=handler, timeout=timeout, max_attempts=max_attempts
        )
        return handler

    return register


def get_job_kind(name: str) -> JobKind:
    """The registered kind called name, or UnknownJobKind."""
    try:
        return _kinds[name]
    except KeyError:
        raise UnknownJobKind(
            f"no job kind {name!r} is registered (known: {', '.join(sorted(_kinds)) or 'none'})"
        ) from None


def job_kinds() -> dict[str, JobKind]:
    """Every registered kind by name."""
    return dict(_kinds)


def import_job_modules() -> None:
    """Import the modules listed in ENGRAMIA_JOB_MODULES so their kinds register."""
    for module in job_modules():
        importlib.import_module(module)
