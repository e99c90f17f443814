"""engramia sync_indexes [--project T/P] [--json]: give large projects their own HNSW index."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import CommandError, CommandParser

from memory.services.indexes import sync_project_indexes
from tenants.management.base import EngramiaCommand


class Command(EngramiaCommand):
    help = (
        "Build the own HNSW index of every project above the exact-search size and drop those "
        "no longer needed (concurrently: writes go on). Safe to run any time; idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", help="tenant-slug/project-slug (default: every project)")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle_command(self, *args: Any, **options: Any) -> None:
        project = self.project_from_option(options["project"]) if options["project"] else None
        report = sync_project_indexes(
            project_id=project.pk if project else None,
            progress=lambda message: print(message, file=sys.stderr, flush=True),
        )
        if report.skipped:
            raise CommandError(f"{report.skipped}; try again when it has finished")
        if options["json"]:
            self.print_json(report.to_dict())
            return
        self.stdout.write(
            f"built {len(report.created)}, dropped {len(report.dropped)}, "
            f"kept {len(report.kept)} project indexes"
        )
