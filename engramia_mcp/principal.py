"""Who an MCP call acts as: the project, the role there, the audit actor and the transport.

Over HTTP it is the bearer key's (tenants.services.key_access: the same scope rule as the API);
over stdio it is the operator the CLI acts as (`ENGRAMIA_ACTOR`, else `cli:<os user>`), who may
do everything in the project the command names.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from engramia_site.request_context import ActingContext, acting_as
from tenants.choices import Role
from tenants.keyscope import KeyScope
from tenants.models import ApiKey, Project
from tenants.replica_pinning import process_principal
from tenants.services import key_access

HTTP = "mcp-http"
STDIO = "mcp-stdio"


@dataclass(frozen=True)
class Principal:
    """The caller of one MCP request."""

    project: Project
    role: Role
    actor: Any  # the key's user, the operator's user, or None (then `label` names it)
    transport: str  # HTTP or STDIO
    key: ApiKey | None = None
    label: str = ""

    @property
    def routing_principal(self) -> str:
        """Whose recent writes pin reads to the primary (tenants.replica_pinning)."""
        return f"key:{self.key.prefix}" if self.key is not None else process_principal()

    @contextmanager
    def acting(self) -> Iterator[ActingContext]:
        """The audit context of one call: actor, key name, label and transport."""
        with acting_as(
            self.actor,
            api_key_name=self.key.name if self.key is not None else "",
            label=self.label,
            transport=self.transport,
        ) as context:
            yield context


def key_principal(scope: KeyScope) -> Principal:
    """The principal of an authenticated key (NotFound/InvalidInput when it acts nowhere)."""
    access = key_access(scope)
    return Principal(
        project=access.project,
        role=access.role,
        actor=access.key.user,
        transport=HTTP,
        key=access.key,
    )


def operator_principal(project: Project, actor: Any, label: str) -> Principal:
    """The local operator (stdio): every role in the project, audited as the CLI's actor."""
    return Principal(project=project, role=Role.OWNER, actor=actor, transport=STDIO, label=label)
