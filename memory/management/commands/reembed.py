"""engramia reembed --project T/P --model M [--queue] [--json]: move a project to another model."""

from __future__ import annotations

import sys
import threading
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import connections

from jobs.choices import JobStatus
from jobs.models import Job
from jobs.services import run_job_inline
from memory.services.reembedding import ReembeddingInProgress, start_reembedding
from retrieval.pinned_model import UnknownEmbeddingModel
from retrieval.registry import embedded_rows
from tenants.management.base import EngramiaCommand

PROGRESS_SECONDS = 1.0


class Command(EngramiaCommand):
    help = (
        "Re-embed every pattern, document chunk and skill of a project with another embedding "
        "model, then switch the project to it (audited). Recall keeps working on the old model "
        "until the switch. Runs here by default; --queue hands it to the job workers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="tenant-slug/project-slug")
        parser.add_argument(
            "--model",
            required=True,
            help="local, hash[:<dimensions>], openai[:<model>], or a stored name",
        )
        parser.add_argument(
            "--queue", action="store_true", help="queue the job for the workers and exit"
        )
        parser.add_argument("--json", action="store_true", help="print the outcome as JSON")

    def handle_command(self, *args: Any, **options: Any) -> None:
        project = self.project_from_option(options["project"])
        try:
            job = start_reembedding(
                project=project,
                embedding_model=options["model"],
                enqueue=options["queue"],
                actor=self.actor,
            )
        except UnknownEmbeddingModel as exc:
            raise CommandError(f"--model: {exc}") from None
        except ReembeddingInProgress as exc:
            raise CommandError(str(exc)) from None
        if job is None:
            self._report(project.path, None, f"already uses {project.embedding_model}", options)
            return
        if options["queue"]:
            self._report(project.path, job, f"queued as job {job.pk}", options)
            return
        show_progress = not options["json"] and sys.stderr.isatty()
        with _ProgressPrinter(job.pk, enabled=show_progress):
            job = run_job_inline(job)
        if job.status != JobStatus.SUCCEEDED:
            raise CommandError(f"job {job.pk} {job.status}: {job.error or 'no reason given'}")
        result = job.result or {}
        self._report(
            project.path,
            job,
            f"{result.get('previous_model')} -> {result.get('embedding_model')}: "
            f"{_switched(result)}, {result.get('swept', 0)} swept after the switch",
            options,
        )

    def _report(self, path: str, job: Job | None, message: str, options: dict[str, Any]) -> None:
        if options["json"]:
            self.print_json(
                {
                    "project": path,
                    "job_id": job.pk if job else None,
                    "status": job.status if job else None,
                    "result": job.result if job else None,
                }
            )
        else:
            self.stdout.write(f"{path}: {message}")


def _switched(result: dict[str, Any]) -> str:
    counts = result.get("switched") or {}  # stored as jsonb, which does not keep key order
    parts = [
        f"{kind}s {counts[kind]}"
        for kind in (rows.kind for rows in embedded_rows())
        if kind in counts
    ]
    return ", ".join(parts) or "nothing to switch"


class _ProgressPrinter:
    """Print the job's progress to stderr every second while it runs in this process."""

    def __init__(self, job_id: int, *, enabled: bool) -> None:
        self.job_id = job_id
        self.enabled = enabled
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reembed-progress", daemon=True)

    def __enter__(self) -> _ProgressPrinter:
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.enabled:
            self._stop.set()
            self._thread.join(timeout=PROGRESS_SECONDS + 5)
            sys.stderr.write("\n")

    def _run(self) -> None:
        try:
            while not self._stop.wait(PROGRESS_SECONDS):
                done, total = (
                    Job.objects.filter(pk=self.job_id)
                    .values_list("progress_done", "progress_total")
                    .first()
                ) or (0, None)
                sys.stderr.write(f"\rre-embedding {done}/{total if total is not None else '?'}")
                sys.stderr.flush()
        finally:
            connections.close_all()  # this thread's connections only
