"""engramia assistants_verify FILE --project T/P [--group-by …] [--sample N] [--json]."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from assistants.importer import GROUP_BY
from assistants.verify import TOP_K, verify_import
from tenants.management.base import EngramiaCommand


class Command(EngramiaCommand):
    help = (
        "Check that imported history is recallable: the share of imported user messages whose "
        f"own answer is recalled in the top {TOP_K}."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the NDJSON export that was imported")
        parser.add_argument("--project", required=True, help="tenant-slug/project-slug")
        parser.add_argument("--group-by", choices=GROUP_BY, default="none")
        parser.add_argument("--sample", type=int, help="check a random sample of N questions")
        parser.add_argument("--json", action="store_true")

    def handle_command(self, *args: Any, **options: Any) -> None:
        project = self.project_from_option(options["project"])
        if not Path(options["file"]).is_file():
            raise CommandError(f"{options['file']}: no such file")
        if options["sample"] is not None and options["sample"] < 1:
            raise CommandError("--sample must be at least 1")
        with open(options["file"], "rb") as stream:
            summary = verify_import(
                project=project,
                stream=stream,
                group_by=options["group_by"],
                sample=options["sample"],
            )
        if options["json"]:
            self.print_json(summary.to_dict())
            return
        self.stdout.write(
            f"{summary.recalled}/{summary.checked} questions recall their own answer in the top "
            f"{TOP_K} ({summary.share:.1%})"
        )
        for miss in summary.misses[:20]:
            self.stdout.write(
                f"  miss {miss['external_id']} ({miss['reason']}): {miss['question'][:80]}"
            )
