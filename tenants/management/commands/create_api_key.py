"""engramia create_api_key --project T/P --role R --name N [--email E] [--json]."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from tenants.choices import Role
from tenants.management.base import EngramiaCommand
from tenants.roles import effective_role
from tenants.services import create_api_key


class Command(EngramiaCommand):
    help = "Issue a new API key for a project, capped at a role; the secret is printed once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="tenant-slug/project-slug")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--name", required=True, help="a label for the key")
        parser.add_argument("--email", help="the key's owner (default: the project's first owner)")
        parser.add_argument("--expires-in-days", type=int, help="expire after N days")
        parser.add_argument("--json", action="store_true", help="print a JSON object")

    def handle_command(self, *args: Any, **options: Any) -> None:
        project = self.project_from_option(options["project"])
        user_model = get_user_model()
        if options["email"]:
            user = user_model.objects.filter(email__iexact=options["email"]).first()
            if user is None:
                raise CommandError(f"no user with email {options['email']!r}")
        else:
            user = (
                user_model.objects.filter(
                    memberships__tenant=project.tenant, memberships__role=Role.OWNER
                )
                .order_by("pk")
                .first()
            )
            if user is None:
                raise CommandError(f"{project.path} has no owner; pass --email")
        held = effective_role(user, project)
        if held is None or not held.covers(Role(options["role"])):
            raise CommandError(
                f"{user.email} holds {held.value if held else 'no role'} on {project.path}; "
                f"a key cannot be {options['role']}"
            )
        expires_at = None
        if options["expires_in_days"] is not None:
            if options["expires_in_days"] < 1:
                raise CommandError("--expires-in-days must be at least 1")
            expires_at = timezone.now() + timedelta(days=options["expires_in_days"])
        issued = create_api_key(
            user=user,
            tenant=project.tenant,
            project=project,
            name=options["name"],
            role=options["role"],
            expires_at=expires_at,
            actor=self.actor,
        )
        payload = {
            "id": issued.key.pk,
            "api_key": issued.secret,
            "role": issued.key.role,
            "project": project.path,
        }
        if options["json"]:
            self.print_json(payload)
        else:
            self.stdout.write(
                f"{issued.secret}\n(shown once; role {issued.key.role} on {project.path})"
            )
