"""engramia bootstrap --tenant T --project P --email E [--json]."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from tenants.management.base import EngramiaCommand
from tenants.services import bootstrap


class Command(EngramiaCommand):
    help = (
        "Idempotently create a tenant, a project and its owner (who can log in to the admin), "
        "and issue a new owner API key."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--email", required=True, help="the owner's email (admin login)")
        parser.add_argument("--key-name", default="bootstrap", help="name of the new key")
        parser.add_argument("--admin-url", default="http://127.0.0.1:8000/admin/")
        parser.add_argument("--json", action="store_true", help="print a JSON object")

    def handle_command(self, *args: Any, **options: Any) -> None:
        result = bootstrap(
            tenant_slug=options["tenant"],
            project_slug=options["project"],
            email=options["email"],
            key_name=options["key_name"],
            actor=self.actor,
        )
        payload = {
            "tenant": result.project.tenant.slug,
            "project": result.project.slug,
            "api_key": result.issued.secret,
            "admin_url": options["admin_url"],
        }
        if options["json"]:
            if result.password:
                payload["admin_password"] = result.password
            self.print_json(payload)
            return
        self.stdout.write(f"project   {result.project.path}")
        self.stdout.write(f"owner     {result.user.email}")
        if result.password:
            self.stdout.write(f"password  {result.password}   (shown once)")
        self.stdout.write(f"api key   {result.issued.secret}   (shown once)")
        self.stdout.write(f"admin     {options['admin_url']}")
