"""engramia run_aging [--project T/P]: apply age decay (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from memory.services import run_aging
from tenants.management.base import EngramiaCommand


class Command(EngramiaCommand):
    help = "Decay eval weights by the age of their evidence and archive stale low-value patterns."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", help="tenant-slug/project-slug (default: every project)")

    def handle_command(self, *args: Any, **options: Any) -> None:
        project = self.project_from_option(options["project"]) if options["project"] else None
        counts = run_aging(project=project, actor=self.actor)
        self.stdout.write(f"decayed {counts['decayed']}, archived {counts['archived']}")
