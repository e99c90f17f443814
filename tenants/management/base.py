"""Base for Engramia's commands: audited as the operator, bad input ends in one line."""

from __future__ import annotations

import getpass
import json
import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from engramia_site.errors import DomainError
from engramia_site.request_context import acting_as
from tenants.models import Project
from tenants.services import ScopeError, get_project_by_path


def operator_principal() -> tuple[Any, str]:
    """The user named by ENGRAMIA_ACTOR (an email), else a 'cli:<os user>' label."""
    email = os.environ.get("ENGRAMIA_ACTOR", "").strip()
    if email:
        user = get_user_model().objects.filter(email__iexact=email).first()
        if user is None:
            raise CommandError(f"ENGRAMIA_ACTOR={email!r} names no user")
        return user, ""
    try:
        name = getpass.getuser()
    except Exception:  # no passwd entry (containers)
        name = str(os.getuid())
    return None, f"cli:{name}"


class EngramiaCommand(BaseCommand):
    """Runs handle_command inside an audit context; refusals become a one-line CommandError."""

    def handle(self, *args: Any, **options: Any) -> str | None:
        actor, label = operator_principal()
        self.actor = actor  # the user write services act as (None: the `cli:<name>` label)
        self.label = label
        with acting_as(actor, label=label):
            try:
                return self.handle_command(*args, **options)
            except ScopeError as exc:
                raise CommandError(str(exc)) from None
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from None
            except DomainError as exc:
                raise CommandError(exc.public_message) from None

    def handle_command(self, *args: Any, **options: Any) -> str | None:
        raise NotImplementedError

    def project_from_option(self, path: str) -> Project:
        """The project named by --project T/P, or a one-line error."""
        return get_project_by_path(path)

    def print_json(self, payload: Any) -> None:
        """Write one JSON document to stdout."""
        self.stdout.write(json.dumps(payload, default=str))
