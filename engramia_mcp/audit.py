"""One audit entry per MCP call: reads are traced as well as writes.

Write tools change rows through services, which audit each change (the acting context stamps
the key's user, key name, request id and transport on those entries too). Every call, a read
or a write, allowed or refused, also leaves one `access` entry on the project naming the tool,
the outcome and the ids it disclosed (never the content). It is written after the operation, in
autocommit on the primary: a recall's reads stay read-only (and on a replica when there is one).
"""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from engramia_mcp.principal import Principal
from tenants.models import AuditEntry, Project

MAX_NAME = 100


def record_call(
    principal: Principal,
    *,
    kind: str,
    name: str,
    outcome: str,
    error_code: str | None = None,
    trace: dict[str, Any] | None = None,
) -> AuditEntry:
    """Audit one call (kind "tool" or "resource") in the principal's project."""
    project = principal.project
    name = name[:MAX_NAME]
    data: dict[str, Any] = {
        "tenant_id": project.tenant_id,
        "project_id": project.pk,
        kind: name,
        "outcome": outcome,
        **(trace or {}),
    }
    if error_code:
        data["error"] = error_code
    # The actor, key name, request id and transport come from the call's acting context
    # (tenants.audit.fill_audit_context).
    return AuditEntry.objects.create(
        content_type=ContentType.objects.get_for_model(Project),
        object_pk=str(project.pk),
        object_id=project.pk,
        object_repr=f"MCP {kind} {name} in {project.path}"[:200],
        action=AuditEntry.Action.ACCESS,
        additional_data=data,
        timestamp=timezone.now(),
    )
