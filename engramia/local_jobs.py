"""Local mode runs its project's jobs itself: a small background thread, not a worker cluster.

Learn queues jobs (a large project's own HNSW index, re-embedding's follow-ups) for django-q2
workers; in local mode nobody may have started one. So each local `Memory` keeps one daemon
thread that runs its project's due jobs: woken when this process creates a job (once its
transaction commits), and every POLL_SECONDS for retries that were waiting out their backoff.
It runs them the way a worker does (`jobs.runner.execute_job`: claimed under a row lock, so a
worker cluster that is running too never runs the same attempt twice). The thread stops with
`Memory.close()` and with the process (it is a daemon, and an exit hook lets a running job end
for up to STOP_SECONDS). ENGRAMIA_LOCAL_JOBS=off turns it off (a worker cluster runs the jobs).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from typing import Any

logger = logging.getLogger("engramia")

POLL_SECONDS = 10.0
STOP_SECONDS = 10.0

_runners: weakref.WeakSet[LocalJobRunner] = weakref.WeakSet()
_listening = False
_listen_lock = threading.Lock()


def local_jobs_enabled() -> bool:
    """False when ENGRAMIA_LOCAL_JOBS says a worker cluster runs the jobs instead."""
    value = os.environ.get("ENGRAMIA_LOCAL_JOBS", "").strip().lower()
    return value not in {"off", "0", "false", "no"}


def _job_created(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """Wake the runners of the job's project once the job is committed (visible to them)."""
    if not created:
        return
    from django.db import transaction

    project_id = instance.project_id

    def wake() -> None:
        for runner in list(_runners):
            if runner.project_id == project_id:
                runner.wake()

    transaction.on_commit(wake)


def _listen() -> None:
    """Connect the job-created hook once per process."""
    global _listening
    with _listen_lock:
        if _listening:
            return
        from django.db.models.signals import post_save

        from jobs.models import Job

        post_save.connect(_job_created, sender=Job, dispatch_uid="engramia-local-jobs")
        atexit.register(_stop_all)
        _listening = True


def _stop_all() -> None:
    for runner in list(_runners):
        runner.stop()


class LocalJobRunner:
    """Runs one project's due jobs on a daemon thread until stopped."""

    def __init__(self, project_id: int) -> None:
        self.project_id = project_id
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"engramia-jobs-{project_id}", daemon=True
        )
        _listen()
        _runners.add(self)
        self._thread.start()
        self._wake.set()  # jobs queued before this process started (nobody ran them)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Stop after the job in hand (waiting for it up to STOP_SECONDS)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(STOP_SECONDS)
        _runners.discard(self)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self.run_due()
            except Exception:  # the next wake tries again; the job rows say what failed
                logger.exception("running the local jobs of project %s", self.project_id)
            finally:
                _close_connections()

    def run_due(self) -> int:
        """Run every due job of the project once; how many were run."""
        from django.db.models import Q
        from django.utils import timezone

        from jobs.choices import JobStatus
        from jobs.models import Job
        from jobs.runner import execute_job

        due = (
            Job.objects.filter(project_id=self.project_id, status=JobStatus.PENDING)
            .filter(Q(requeue_at__isnull=True) | Q(requeue_at__lte=timezone.now()))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        ran = 0
        for job_id in list(due):
            if self._stopping.is_set():
                break
            execute_job(job_id)
            ran += 1
        return ran


def _close_connections() -> None:
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        connection.close()


__all__ = ["LocalJobRunner", "local_jobs_enabled"]
