"""engramia assistants_import FILE --project T/P [--group-by G] [--eval-score X] [--dry-run]."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from assistants.importer import (
    GROUP_BY,
    ImportOptionsError,
    import_assistant_definitions,
    import_assistants_export,
)
from retrieval.ranking import NEUTRAL_SCORE
from tenants.management.base import EngramiaCommand

SUMMARY_KEYS = ("threads", "pairs", "imported", "skipped", "errors", "patterns_per_second")


class Command(EngramiaCommand):
    help = (
        "Import an Assistants NDJSON export: pair each user message with the reply that follows "
        "it and learn the pairs as patterns (idempotent: re-running imports nothing twice)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="NDJSON export (from assistants_export), or - for stdin")
        parser.add_argument("--project", required=True, help="tenant-slug/project-slug")
        parser.add_argument(
            "--group-by",
            choices=GROUP_BY,
            default="none",
            help="one project per assistant, per thread, or none (the given one)",
        )
        parser.add_argument(
            "--eval-score",
            type=float,
            default=NEUTRAL_SCORE,
            help="score recorded for every imported pattern (default 5.0, neutral)",
        )
        parser.add_argument("--dry-run", action="store_true", help="report, store nothing")
        parser.add_argument(
            "--assistants", help="assistant definitions JSON (from assistants_export)"
        )
        parser.add_argument(
            "--files-dir", help="directory of file_search files (text) to import as documents"
        )
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")

    def handle_command(self, *args: Any, **options: Any) -> None:
        project = self.project_from_option(options["project"])
        path = options["file"]
        if path != "-" and not Path(path).is_file():
            raise CommandError(f"{path}: no such file")
        progress = None
        if not options["json"] and sys.stderr.isatty():

            def progress(done: int, total: int) -> None:
                sys.stderr.write(f"\rimporting {done}/{total} pairs")
                sys.stderr.flush()

        stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
        try:
            summary = import_assistants_export(
                project=project,
                stream=stream,
                group_by=options["group_by"],
                eval_score=options["eval_score"],
                dry_run=options["dry_run"],
                progress=progress,
                actor=self.actor,
            )
        except ImportOptionsError as exc:
            raise CommandError(str(exc)) from None
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
        if progress is not None:
            sys.stderr.write("\n")
        definitions = None
        if options["assistants"] and not options["dry_run"]:
            definitions = self._definitions(project, options)
        payload = {key: getattr(summary, key) for key in SUMMARY_KEYS}
        payload.update(
            threads_restored=summary.threads_restored,
            messages_restored=summary.messages_restored,
            unpaired=summary.unpaired,
            dry_run=summary.dry_run,
            projects=summary.projects,
            error_lines=summary.error_lines[:20],
        )
        if definitions is not None:
            payload["definitions"] = vars(definitions)
        if options["json"]:
            self.print_json(payload)
            return
        self._print_summary(summary, definitions)

    def _print_summary(self, summary: Any, definitions: Any) -> None:
        """The import's outcome for a person reading the terminal."""
        verb = "would import" if summary.dry_run else "imported"
        self.stdout.write(
            f"{summary.threads} threads, {summary.pairs} pairs: {verb} {summary.imported}, "
            f"skipped {summary.skipped} already present, {summary.unpaired} unpaired messages, "
            f"{summary.errors} bad lines ({summary.patterns_per_second} patterns/s)"
        )
        restored = "would restore" if summary.dry_run else "restored"
        self.stdout.write(
            f"{restored} {summary.messages_restored} messages in {summary.threads_restored} "
            "threads under their OpenAI ids (served at /openai/v1)"
        )
        for error in summary.error_lines[:20]:
            self.stdout.write(f"  line {error['line']}: {error['reason']}")
        if definitions is not None:
            self.stdout.write(
                f"definitions: {definitions.assistants} assistants "
                f"({definitions.assistants_restored} restored under their ids), "
                f"{definitions.skills} skills, {definitions.documents} documents"
            )

    def _definitions(self, project: Any, options: dict[str, Any]) -> Any:
        try:
            assistants = json.loads(Path(options["assistants"]).read_text())
        except (OSError, ValueError) as exc:
            raise CommandError(
                f"{options['assistants']}: not a readable JSON file ({exc})"
            ) from None
        if not isinstance(assistants, list):
            raise CommandError(f"{options['assistants']}: expected a JSON list of assistants")
        files_dir = Path(options["files_dir"]) if options["files_dir"] else None
        if files_dir is not None and not files_dir.is_dir():
            raise CommandError(f"{files_dir}: not a directory")
        return import_assistant_definitions(
            project=project,
            assistants=assistants,
            group_by=options["group_by"],
            files_dir=files_dir,
            actor=self.actor,
        )
