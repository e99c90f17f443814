"""Tunables of the job engine: a Django setting of the same name wins, else the environment.

Read at call time, so tests and worker subprocesses can set them without reloading settings.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from engramia_site.env import ConfigurationError, env_list, env_str

DEFAULT_HEARTBEAT_SECONDS = 5.0
DEFAULT_STALE_SECONDS = 60.0
DEFAULT_SWEEP_SECONDS = 5.0
DEFAULT_RETRY_BACKOFF_SECONDS = 5.0
MAX_RETRY_BACKOFF_SECONDS = 600.0
# Progress, checkpoints and the cancel flag touch the database at most this often.
PROGRESS_INTERVAL_SECONDS = 0.5


def _seconds(name: str, default: float, *, minimum: float) -> float:
    configured = getattr(settings, name, None)
    raw = str(configured) if configured is not None else env_str(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number of seconds") from None
    if value < minimum:
        raise ConfigurationError(f"{name}={raw!r} must be at least {minimum}")
    return value


def heartbeat_seconds() -> float:
    """How often a running job proves its worker is alive (ENGRAMIA_JOB_HEARTBEAT_SECONDS)."""
    return _seconds("ENGRAMIA_JOB_HEARTBEAT_SECONDS", DEFAULT_HEARTBEAT_SECONDS, minimum=0.05)


def stale_seconds() -> float:
    """Silence after which a running job's worker is presumed dead (ENGRAMIA_JOB_STALE_SECONDS)."""
    stale = _seconds("ENGRAMIA_JOB_STALE_SECONDS", DEFAULT_STALE_SECONDS, minimum=0.1)
    if stale < 2 * heartbeat_seconds():
        raise ConfigurationError(
            "ENGRAMIA_JOB_STALE_SECONDS must be at least twice ENGRAMIA_JOB_HEARTBEAT_SECONDS, "
            "or live jobs would be taken for dead ones"
        )
    return stale


def sweep_seconds() -> float:
    """How often each worker cluster recovers stale jobs and queues due retries."""
    return _seconds("ENGRAMIA_JOB_SWEEP_SECONDS", DEFAULT_SWEEP_SECONDS, minimum=0.05)


def retry_backoff_seconds() -> float:
    """The first retry's delay, doubled for each next one (ENGRAMIA_JOB_RETRY_BACKOFF_SECONDS)."""
    return _seconds("ENGRAMIA_JOB_RETRY_BACKOFF_SECONDS", DEFAULT_RETRY_BACKOFF_SECONDS, minimum=0)


def default_timeout_seconds() -> int:
    """A job kind's time limit unless it names one: the cluster's (ENGRAMIA_JOB_TIMEOUT)."""
    cluster: dict[str, Any] = settings.Q_CLUSTER
    return int(cluster.get("timeout") or 1800)


def job_modules() -> list[str]:
    """Extra modules that register job kinds (ENGRAMIA_JOB_MODULES, comma-separated)."""
    configured = getattr(settings, "ENGRAMIA_JOB_MODULES", None)
    if configured is not None:
        return list(configured)
    return env_list("ENGRAMIA_JOB_MODULES", [])
