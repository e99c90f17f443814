"""engramia cutover --project T/P --read-path openai|dual|engramia --reason TEXT."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from tenants.choices import ReadPath
from tenants.management.base import EngramiaCommand
from tenants.services import set_read_path


class Command(EngramiaCommand):
    help = "Set where the project's applications read memory from; recorded in the audit log."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="tenant-slug/project-slug")
        parser.add_argument("--read-path", required=True, choices=ReadPath.values)
        parser.add_argument("--reason", required=True, help="why (kept in the audit log)")

    def handle_command(self, *args: Any, **options: Any) -> None:
        project = self.project_from_option(options["project"])
        before = project.read_path
        set_read_path(
            project=project,
            read_path=options["read_path"],
            reason=options["reason"],
            actor=self.actor,
        )
        self.stdout.write(f"{project.path}: read path {before} -> {project.read_path}")
