"""Threads and assistants exported from OpenAI, restored under their original ids.

An import (`engramia assistants_import`, POST /v1/import/assistants) learns the export as
patterns and also restores each thread and its messages here, keeping OpenAI's ids: code that
stored `thread_abc…` goes on calling `messages.list(thread_id="thread_abc…")` and gets the old
history, and a new run on that thread continues it. Restoring is idempotent (by id), and
messages go in bulk with one audit entry per thread, as patterns do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from auditlog.models import LogEntry as BaseLogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from assistants.models import Assistant, Message, Thread
from assistants.ndjson import Message as ExportedMessage
from engramia_site.request_context import audited
from tenants.models import AuditEntry, Project

MAX_ID = 64
SUPPORTED_TOOLS = ("function", "file_search")


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def missing_messages(project: Project, thread_id: str, messages: list[ExportedMessage]) -> int:
    """How many of a thread's messages a restore would add (a dry run's count; read-only)."""
    known = set(
        Message.objects.filter(project=project, thread__public_id=thread_id[:MAX_ID]).values_list(
            "public_id", flat=True
        )
    )
    return len({m.message_id[:MAX_ID] for m in messages} - known)


@audited
@transaction.atomic
def restore_thread(
    *, project: Project, thread_id: str, messages: list[ExportedMessage], actor: Any
) -> int:
    """Restore one exported thread under its id; returns how many messages were added."""
    ordered = sorted(messages, key=lambda m: (m.created_at, m.line))
    thread, _ = Thread.objects.get_or_create(
        project=project,
        public_id=thread_id[:MAX_ID],
        defaults={"created_at": _moment(ordered[0].created_at), "metadata": {}},
    )
    known = set(
        Message.objects.filter(
            project=project, public_id__in=[m.message_id[:MAX_ID] for m in ordered]
        ).values_list("public_id", flat=True)
    )
    fresh = [
        Message(
            project=project,
            thread=thread,
            public_id=message.message_id[:MAX_ID],
            role=message.role,
            content=[{"type": "text", "text": {"value": message.text, "annotations": []}}],
            attachments=[
                {"file_id": file_id, "tools": [{"type": "file_search"}]}
                for file_id in message.attachments
            ],
            assistant_ref=(message.assistant_id if message.role == "assistant" else "")[:MAX_ID],
            created_at=_moment(message.created_at),
            completed_at=_moment(message.created_at),
        )
        for message in ordered
        if message.message_id[:MAX_ID] not in known
    ]
    # Bulk inserts bypass model signals: one audit entry says what the thread received.
    created = Message.objects.bulk_create(fresh, ignore_conflicts=True)
    if created:
        _audit_restore(thread, len(created))
    return len(created)


def _audit_restore(thread: Thread, count: int) -> None:
    entry = AuditEntry(
        content_type=ContentType.objects.get_for_model(Thread),
        object_pk=str(thread.pk),
        object_id=thread.pk,
        object_repr=thread.public_id,
        action=BaseLogEntry.Action.UPDATE,
        changes={"restored_messages": ["0", str(count)]},
        additional_data={
            "tenant_id": thread.project.tenant_id,
            "project_id": thread.project_id,
            "bulk": True,
        },
        timestamp=timezone.now(),
    )
    entry.save()  # tenants.audit fills in the actor, request id, tenant and project


def _tools(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """The export's tools in the v2 shape; tools this API refuses are left behind."""
    tools: list[dict[str, Any]] = []
    for tool in definition.get("tools") or []:
        if not isinstance(tool, dict) or tool.get("type") not in SUPPORTED_TOOLS:
            continue
        if tool["type"] == "file_search":
            tools.append({"type": "file_search"})
            continue
        nested = tool.get("function")
        function: dict[str, Any] = nested if isinstance(nested, dict) else tool
        tools.append(
            {
                "type": "function",
                "function": {
                    "name": function.get("name"),
                    "description": function.get("description") or "",
                    "parameters": function.get("parameters")
                    or {"type": "object", "properties": {}},
                },
            }
        )
    return tools


@audited
@transaction.atomic
def restore_assistant(*, project: Project, definition: dict[str, Any], actor: Any) -> bool:
    """Restore an exported assistant under its id (False when it is already there)."""
    public_id = str(definition.get("id") or "")[:MAX_ID]
    if not public_id or Assistant.objects.filter(project=project, public_id=public_id).exists():
        return False
    created = definition.get("created_at")
    Assistant.objects.create(
        project=project,
        public_id=public_id,
        name=(definition.get("name") or None),
        description=(definition.get("description") or None),
        model=str(definition.get("model") or "gpt-4o")[:256],
        instructions=definition.get("instructions"),
        tools=_tools(definition),
        metadata=dict(definition.get("metadata") or {}),
        created_at=_moment(created) if isinstance(created, int | float) else timezone.now(),
    )
    return True
