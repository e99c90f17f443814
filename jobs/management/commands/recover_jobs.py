"""engramia recover_jobs: one sweep by hand (or from cron when workers run elsewhere)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from jobs.services import recover_stale_jobs


class Command(BaseCommand):
    help = "Retry or fail jobs whose worker died, and queue pending retries that are due."

    def handle(self, *args: Any, **options: Any) -> None:
        report = recover_stale_jobs()
        self.stdout.write(
            f"requeued {len(report.requeued)}, failed {len(report.failed)}, "
            f"cancelled {len(report.cancelled)}, queued {len(report.queued)}"
        )
