"""engramia qcluster: django-q2's worker cluster, plus the jobs sweeper in the supervising process.

Before taking work, and then every ENGRAMIA_JOB_SWEEP_SECONDS, the cluster recovers jobs whose
worker died (SIGKILL, OOM, lost machine), queues pending retries that are due, and prunes
django-q2's successful task results to the newest 1,000. This command
shadows django-q2's own, which is why `jobs` precedes `django_q` in INSTALLED_APPS.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from django import db
from django.conf import settings
from django_q.management.commands.qcluster import Command as QClusterCommand

from engramia_site.gc_freeze import freeze_startup_objects
from jobs.conf import sweep_seconds
from jobs.services import prune_task_results, recover_stale_jobs

logger = logging.getLogger("jobs")


def close_for_fork() -> None:
    """Close this process's connections, and its pools when ENGRAMIA_DB_POOL_SIZE made some."""
    db.connections.close_all()
    for connection in db.connections.all(initialized_only=True):
        close_pool = getattr(connection, "close_pool", None)
        if close_pool is not None:
            close_pool()


class Command(QClusterCommand):
    help = "Start a worker cluster that runs jobs and recovers those of dead workers."

    def handle(self, *args: Any, **options: Any) -> None:
        from django_q.cluster import Cluster

        settings.SECRET_KEY  # noqa: B018 - signing needs it; fail before forking
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        interval = sweep_seconds()
        self.sweep()
        # The cluster forks; a connection (or a pool's) shared with the children would be
        # corrupted.
        close_for_fork()
        # The workers fork from here: they share what is loaded and skip it when collecting.
        freeze_startup_objects()
        cluster = Cluster()
        cluster.start()
        if options.get("run_once"):
            cluster.stop()
            return
        sentinel = cluster.sentinel
        while sentinel is not None and sentinel.is_alive():
            sentinel.join(interval)  # wakes early when the cluster stops
            if sentinel.is_alive():
                self.sweep()
        db.connections.close_all()

    def sweep(self) -> None:
        """One recovery pass; a failure (database briefly away) waits for the next one."""
        try:
            db.close_old_connections()
            report = recover_stale_jobs()
        except Exception:
            logger.exception("job sweep failed; retrying at the next interval")
            report = None
        try:
            prune_task_results()
        except Exception:
            logger.exception("pruning task results failed; retrying at the next interval")
        if report:
            logger.info(
                "job sweep: requeued %s, failed %s, cancelled %s, queued %s",
                report.requeued,
                report.failed,
                report.cancelled,
                report.queued,
            )
