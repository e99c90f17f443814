"""Fixtures of the jobs suite: test-only kinds, jobs in a given state, and real worker clusters."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

import tests.jobs.kinds  # noqa: F401 - registers the test.* kinds in this process

REPO = Path(__file__).resolve().parents[2]

# Short enough that a killed worker's job is recovered within about two seconds.
WORKER_ENV = {
    "ENGRAMIA_JOB_MODULES": "tests.jobs.kinds",
    "ENGRAMIA_JOB_HEARTBEAT_SECONDS": "0.2",
    "ENGRAMIA_JOB_STALE_SECONDS": "1.5",
    "ENGRAMIA_JOB_SWEEP_SECONDS": "0.25",
    "ENGRAMIA_JOB_RETRY_BACKOFF_SECONDS": "0.2",
    "ENGRAMIA_WORKERS": "1",
    "ENGRAMIA_LOG_LEVEL": "WARNING",
}


def worker_database_url() -> str:
    """A URL for the test database this session created (workers must use it, not the real one)."""
    from django.db import connection

    settings = connection.settings_dict
    user, password = settings.get("USER") or "", settings.get("PASSWORD") or ""
    credentials = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    host = settings.get("HOST") or ""
    port = f":{settings['PORT']}" if settings.get("PORT") else ""
    query = {}
    if settings.get("OPTIONS", {}).get("host"):
        query["host"] = settings["OPTIONS"]["host"]
    url = f"postgresql://{credentials}@{host}{port}/{quote(settings['NAME'], safe='')}"
    return f"{url}?{urlencode(query)}" if query else url


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """Personas and staff users get passwords; real hashing would dominate this suite's time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class Worker:
    """One `engramia qcluster` process group, started against the test database."""

    def __init__(self, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        environment = {
            **os.environ,
            **WORKER_ENV,
            "ENGRAMIA_DATABASE_URL": worker_database_url(),
            **(env or {}),
        }
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "engramia.cli", "qcluster"],
            cwd=REPO,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the cluster forks children
        )

    def kill(self, signum: int = signal.SIGKILL) -> None:
        """Send signum to the whole cluster (supervisor, sentinel, workers) and reap it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _group_alive(self.process.pid):
            time.sleep(0.05)

    def stop(self) -> None:
        """Kill the whole group; nothing of the cluster outlives the test."""
        self.kill(signal.SIGKILL)
        self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _group_alive(pgid: int) -> bool:
    """True while a live (non-zombie) process remains in the process group."""
    import psutil

    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return False


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start qcluster workers on demand; every one is stopped at teardown."""
    workers: list[Worker] = []

    def start(**env: str) -> Worker:
        worker = Worker(tmp_path / f"worker-{len(workers)}.log", env=env)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def wait_for(
    predicate: Callable[[], Any], *, timeout: float, what: str, log: Callable[[], str] | None = None
) -> Any:
    """Poll predicate until it returns something truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f"\n--- worker log ---\n{log()}" if log else ""
            pytest.fail(f"timed out after {timeout} s waiting for {what}{detail}")
        time.sleep(0.05)


@pytest.fixture
def make_job(project_a: Any) -> Callable[..., Any]:
    """Create a job row directly in any state (no queueing)."""
    from django.utils import timezone

    from jobs.models import Job

    def make(
        kind: str = "test.echo", *, project: Any = None, ago: float | None = None, **fields: Any
    ) -> Any:
        if ago is not None:  # seconds since the worker was last heard from
            moment = timezone.now() - timedelta(seconds=ago)
            fields.setdefault("started_at", moment)
            fields.setdefault("heartbeat_at", moment)
        return Job.objects.create(project=project or project_a, kind=kind, **fields)

    return make
