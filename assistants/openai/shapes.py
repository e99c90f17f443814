"""The objects as OpenAI's Assistants v2 API returns them (unix-second timestamps, prefixed ids).

Shapes read the row's related thread and run (`thread.public_id`): callers select_related them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from assistants.choices import FileStatus
from assistants.models import (
    Assistant,
    File,
    Message,
    Run,
    RunStep,
    Thread,
    VectorStore,
    VectorStoreFile,
    VectorStoreFileBatch,
)


def unix(moment: datetime | None) -> int | None:
    """A time as unix seconds (None stays None)."""
    return int(moment.timestamp()) if moment is not None else None


def assistant_shape(assistant: Assistant) -> dict[str, Any]:
    """An assistant object."""
    return {
        "id": assistant.public_id,
        "object": "assistant",
        "created_at": unix(assistant.created_at),
        "name": assistant.name,
        "description": assistant.description,
        "model": assistant.model,
        "instructions": assistant.instructions,
        "tools": assistant.tools or [],
        "tool_resources": public_resources(assistant.tool_resources),
        "metadata": assistant.metadata or {},
        "temperature": assistant.temperature if assistant.temperature is not None else 1.0,
        "top_p": assistant.top_p if assistant.top_p is not None else 1.0,
        "response_format": assistant.response_format or "auto",
        "reasoning_effort": assistant.reasoning_effort,
    }


def public_resources(resources: dict[str, Any] | None) -> dict[str, Any]:
    """Tool resources as returned: the vector store ids (inline stores are made at creation)."""
    search = (resources or {}).get("file_search")
    if not search:
        return {}
    return {"file_search": {"vector_store_ids": list(search.get("vector_store_ids") or [])}}


def thread_shape(thread: Thread) -> dict[str, Any]:
    """A thread object."""
    return {
        "id": thread.public_id,
        "object": "thread",
        "created_at": unix(thread.created_at),
        "metadata": thread.metadata or {},
        "tool_resources": public_resources(thread.tool_resources),
    }


def message_shape(message: Message, thread_id: str | None = None) -> dict[str, Any]:
    """A message object."""
    return {
        "id": message.public_id,
        "object": "thread.message",
        "created_at": unix(message.created_at),
        "thread_id": thread_id or message.thread.public_id,
        "status": message.status,
        "incomplete_details": message.incomplete_details,
        "completed_at": unix(message.completed_at),
        "incomplete_at": unix(message.incomplete_at),
        "role": message.role,
        "content": message.content or [],
        "assistant_id": message.assistant_ref or None,
        "run_id": message.run_ref or None,
        "attachments": message.attachments or [],
        "metadata": message.metadata or {},
    }


def run_shape(run: Run, thread_id: str | None = None) -> dict[str, Any]:
    """A run object."""
    return {
        "id": run.public_id,
        "object": "thread.run",
        "created_at": unix(run.created_at),
        "thread_id": thread_id or run.thread.public_id,
        "assistant_id": run.assistant_ref,
        "status": run.status,
        "required_action": run.required_action,
        "last_error": run.last_error,
        "expires_at": unix(run.expires_at),
        "started_at": unix(run.started_at),
        "cancelled_at": unix(run.cancelled_at),
        "failed_at": unix(run.failed_at),
        "completed_at": unix(run.completed_at),
        "incomplete_details": run.incomplete_details,
        "model": run.model,
        "instructions": run.instructions,
        "tools": run.tools or [],
        "metadata": run.metadata or {},
        "usage": run.usage,
        "temperature": run.temperature if run.temperature is not None else 1.0,
        "top_p": run.top_p if run.top_p is not None else 1.0,
        "max_prompt_tokens": run.max_prompt_tokens,
        "max_completion_tokens": run.max_completion_tokens,
        "truncation_strategy": run.truncation_strategy or {"type": "auto", "last_messages": None},
        "response_format": run.response_format or "auto",
        "tool_choice": run.tool_choice or "auto",
        "parallel_tool_calls": run.parallel_tool_calls,
        "reasoning_effort": run.reasoning_effort,
    }


def step_shape(
    step: RunStep, run: Run | None = None, thread_id: str | None = None
) -> dict[str, Any]:
    """A run step object."""
    run = run or step.run
    return {
        "id": step.public_id,
        "object": "thread.run.step",
        "created_at": unix(step.created_at),
        "run_id": run.public_id,
        "assistant_id": run.assistant_ref,
        "thread_id": thread_id or run.thread.public_id,
        "type": step.type,
        "status": step.status,
        "cancelled_at": unix(step.cancelled_at),
        "completed_at": unix(step.completed_at),
        "expired_at": None,
        "failed_at": unix(step.failed_at),
        "last_error": step.last_error,
        "step_details": step.step_details,
        "usage": step.usage,
        "metadata": step.metadata or {},
    }


def file_shape(file: File) -> dict[str, Any]:
    """A file object."""
    return {
        "id": file.public_id,
        "object": "file",
        "bytes": file.bytes,
        "created_at": unix(file.created_at),
        "filename": file.filename,
        "purpose": file.purpose,
        "status": "processed",
        "status_details": None,
        "expires_at": None,
    }


def file_counts(statuses: list[str]) -> dict[str, int]:
    """How many files are in each indexing state."""
    counts = {status.value: statuses.count(status.value) for status in FileStatus}
    return {**counts, "total": len(statuses)}


def vector_store_shape(store: VectorStore, statuses: list[str], usage: int) -> dict[str, Any]:
    """A vector store object (statuses: its files' indexing states)."""
    counts = file_counts(statuses)
    return {
        "id": store.public_id,
        "object": "vector_store",
        "created_at": unix(store.created_at),
        "name": store.name,
        "usage_bytes": usage,
        "file_counts": counts,
        "status": "in_progress" if counts["in_progress"] else "completed",
        "expires_after": store.expires_after,
        "expires_at": None,
        "last_active_at": unix(store.last_active_at or store.created_at),
        "metadata": store.metadata or {},
    }


def vector_store_file_shape(member: VectorStoreFile) -> dict[str, Any]:
    """A vector store file object (its id is the file's)."""
    return {
        "id": member.file.public_id,
        "object": "vector_store.file",
        "usage_bytes": member.usage_bytes,
        "created_at": unix(member.created_at),
        "vector_store_id": member.vector_store.public_id,
        "status": member.status,
        "last_error": member.last_error,
        "chunking_strategy": member.chunking_strategy
        or {"type": "static", "static": {"max_chunk_size_tokens": 300, "chunk_overlap_tokens": 40}},
        "attributes": member.attributes or {},
    }


def batch_shape(batch: VectorStoreFileBatch, statuses: list[str]) -> dict[str, Any]:
    """A vector store file batch object."""
    counts = file_counts(statuses)
    return {
        "id": batch.public_id,
        "object": "vector_store.files_batch",
        "created_at": unix(batch.created_at),
        "vector_store_id": batch.vector_store.public_id,
        "status": "in_progress"
        if counts["in_progress"]
        else ("cancelled" if batch.status == FileStatus.CANCELLED else "completed"),
        "file_counts": counts,
    }
