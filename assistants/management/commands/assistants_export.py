"""engramia assistants_export --thread-ids FILE --assistant-id ID --out FILE [--resume]."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from assistants.export import (
    ExportError,
    TerminalProgress,
    export_assistants,
    export_threads,
    make_client,
    read_thread_ids,
)


class Command(BaseCommand):
    help = (
        "Dump Assistants API threads to NDJSON (one message per line) with the official openai "
        "SDK; OPENAI_API_KEY and OPENAI_BASE_URL are honoured. Resumable with --resume."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--thread-ids", required=True, help="file with one thread id per line")
        parser.add_argument("--assistant-id", required=True, help="assistant id for user messages")
        parser.add_argument("--out", required=True, help="NDJSON output file (appended to)")
        parser.add_argument("--resume", action="store_true", help="continue an interrupted export")
        parser.add_argument(
            "--assistants-out", help="also write assistant definitions to this JSON file"
        )
        parser.add_argument(
            "--max-retries",
            type=int,
            default=5,
            help="retries per request on 429, 5xx and connection errors (default 5)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not Path(options["thread_ids"]).is_file():
            raise CommandError(f"{options['thread_ids']}: no such file")
        progress = TerminalProgress()
        try:
            if options["max_retries"] < 0:
                raise CommandError("--max-retries must be 0 or more")
            client = make_client(max_retries=options["max_retries"])
            thread_ids = read_thread_ids(options["thread_ids"])
            if not thread_ids:
                raise CommandError(f"{options['thread_ids']}: no thread ids in the file")
            summary = export_threads(
                client,
                thread_ids,
                options["assistant_id"],
                options["out"],
                resume=options["resume"],
                progress=progress,
            )
            if options["assistants_out"]:
                count = export_assistants(client, options["assistants_out"])
                self.stdout.write(f"{count} assistant definitions -> {options['assistants_out']}")
        except ExportError as exc:
            raise CommandError(str(exc).splitlines()[0]) from None
        finally:
            progress.close()
        self.stdout.write(
            f"{summary.threads_exported}/{summary.threads_total} threads, {summary.messages} "
            f"messages -> {options['out']} ({summary.threads_skipped_resume} already done)"
        )
        for label, items in (("not found", summary.not_found), ("gone (410)", summary.gone)):
            if items:
                self.stdout.write(f"  {label}: {', '.join(items[:20])}")
        for failure in summary.failed[:20]:
            self.stdout.write(f"  failed {failure.thread_id}: {failure.reason}")
        if summary.failed:
            sys.exit(1)
