"""Writes of assistants, threads and messages (keyword-only actor, one transaction, audited)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from assistants.models import Assistant, Message, Thread
from assistants.openai import ids
from assistants.openai.services.files import (
    attach_to_thread_store,
    create_vector_store,
    require_vector_stores,
)
from assistants.openai.services.lookup import active_run
from engramia_site.errors import InvalidInput
from engramia_site.request_context import audited
from tenants.models import Project

ASSISTANT_FIELDS = (
    "name",
    "description",
    "model",
    "instructions",
    "tools",
    "metadata",
    "temperature",
    "top_p",
    "response_format",
    "reasoning_effort",
)


def run_lock_message(thread: Thread, run_id: str) -> str:
    """OpenAI's own words for the run lock (clients match on them)."""
    return f"Can't add messages to {thread.public_id} while a run {run_id} is active."


def _assistant_values(values: dict[str, Any]) -> dict[str, Any]:
    found = {name: values[name] for name in ASSISTANT_FIELDS if name in values}
    if "tools" in found:
        found["tools"] = found["tools"] or []
    if "metadata" in found:
        found["metadata"] = found["metadata"] or {}
    if found.get("response_format") == "auto":
        found["response_format"] = None
    return found


def resolve_resources(
    project: Project, resources: dict[str, Any] | None, *, actor: Any, field: str
) -> dict[str, Any]:
    """Tool resources as stored: existing vector stores checked, inline ones created."""
    search = (resources or {}).get("file_search") or {}
    store_ids = list(search.get("vector_store_ids") or [])
    require_vector_stores(project, store_ids, field=f"{field}.file_search.vector_store_ids")
    for index, spec in enumerate(search.get("vector_stores") or []):
        store = create_vector_store(
            project=project,
            name=None,
            file_ids=spec["file_ids"],
            metadata=spec["metadata"],
            actor=actor,
            field=f"{field}.file_search.vector_stores.{index}.file_ids",
        )
        store_ids.append(store.public_id)
    return {"file_search": {"vector_store_ids": store_ids}} if store_ids else {}


def register_tools(project: Project, tools: list[dict[str, Any]], *, actor: Any) -> None:
    """Put an assistant's function tools in the project's skill registry."""
    from skills.services import register_function_tools

    try:
        register_function_tools(project=project, tools=tools, actor=actor)
    except ValidationError as exc:
        raise InvalidInput({key: list(value) for key, value in exc.message_dict.items()}) from exc


@audited
@transaction.atomic
def create_assistant(
    *,
    project: Project,
    values: dict[str, Any],
    actor: Any,
    public_id: str | None = None,
    created_at: datetime | None = None,
) -> Assistant:
    """Store an assistant; its function tools join the skill registry."""
    resources = resolve_resources(
        project, values.get("tool_resources"), actor=actor, field="tool_resources"
    )
    assistant = Assistant.objects.create(
        project=project,
        public_id=public_id or ids.new_id(ids.ASSISTANT),
        created_at=created_at or timezone.now(),
        tool_resources=resources,
        **_assistant_values(values),
    )
    register_tools(project, assistant.tools, actor=actor)
    return assistant


@audited
@transaction.atomic
def update_assistant(*, assistant: Assistant, values: dict[str, Any], actor: Any) -> Assistant:
    """Change the fields given; new function tools join the skill registry."""
    for name, value in _assistant_values(values).items():
        setattr(assistant, name, value)
    if "tool_resources" in values:
        assistant.tool_resources = resolve_resources(
            assistant.project, values["tool_resources"], actor=actor, field="tool_resources"
        )
    assistant.save()
    if "tools" in values:
        register_tools(assistant.project, assistant.tools, actor=actor)
    return assistant


@audited
@transaction.atomic
def delete_assistant(*, assistant: Assistant, actor: Any) -> None:
    """Delete an assistant (its runs keep its id; its skills stay in the registry)."""
    assistant.delete()


@audited
@transaction.atomic
def create_thread(
    *,
    project: Project,
    values: dict[str, Any],
    actor: Any,
    public_id: str | None = None,
    created_at: datetime | None = None,
) -> Thread:
    """Store a thread with its first messages."""
    thread = Thread.objects.create(
        project=project,
        public_id=public_id or ids.new_id(ids.THREAD),
        created_at=created_at or timezone.now(),
        metadata=values.get("metadata") or {},
        tool_resources=resolve_resources(
            project, values.get("tool_resources"), actor=actor, field="tool_resources"
        ),
    )
    for index, message in enumerate(values.get("messages") or []):
        # No other transaction sees the new thread: no lock to take, no run to wait for.
        append_message(thread=thread, values=message, actor=actor, field=f"messages.{index}")
    return thread


@audited
@transaction.atomic
def update_thread(*, thread: Thread, values: dict[str, Any], actor: Any) -> Thread:
    """Change a thread's metadata or tool resources."""
    if "metadata" in values:
        thread.metadata = values["metadata"] or {}
    if "tool_resources" in values:
        thread.tool_resources = resolve_resources(
            thread.project, values["tool_resources"], actor=actor, field="tool_resources"
        )
    thread.save()
    return thread


@audited
@transaction.atomic
def delete_thread(*, thread: Thread, actor: Any) -> None:
    """Delete a thread with its messages, runs and steps."""
    thread.delete()


@audited
@transaction.atomic
def add_message(
    *,
    thread: Thread,
    values: dict[str, Any],
    actor: Any,
    field: str = "",
) -> Message:
    """Append a message (refused while a run holds the thread's run lock)."""
    Thread.objects.select_for_update().filter(pk=thread.pk).first()
    holder = active_run(thread)
    if holder is not None:
        raise InvalidInput(run_lock_message(thread, holder.public_id))
    return append_message(thread=thread, values=values, actor=actor, field=field)


def append_message(
    *, thread: Thread, values: dict[str, Any], actor: Any, field: str = ""
) -> Message:
    """add_message's write, in the caller's transaction, for a caller that holds the thread's
    row lock and knows no run is active (a thread it just made, a run it is starting)."""
    attachments = values.get("attachments") or []
    if attachments:
        prefix = f"{field}.attachments" if field else "attachments"
        attach_to_thread_store(
            thread=thread, file_ids=[a["file_id"] for a in attachments], actor=actor, field=prefix
        )
    return Message.objects.create(
        project=thread.project,
        thread=thread,
        public_id=values.get("public_id") or ids.new_id(ids.MESSAGE),
        created_at=values.get("created_at") or timezone.now(),
        role=values["role"],
        content=values["content"],
        attachments=attachments,
        metadata=values.get("metadata") or {},
        assistant_ref=values.get("assistant_ref", ""),
        run_ref=values.get("run_ref", ""),
    )


@audited
@transaction.atomic
def update_metadata(*, row: Any, metadata: dict[str, Any] | None, actor: Any) -> Any:
    """Replace a message's or run's metadata."""
    if metadata is not None:
        row.metadata = metadata
        row.save(update_fields=["metadata"])
    return row


@audited
@transaction.atomic
def delete_message(*, message: Message, actor: Any) -> None:
    """Delete one message of a thread."""
    message.delete()
