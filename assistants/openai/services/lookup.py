"""Finding a project's objects by their OpenAI id: missing and not-yours are the same 404."""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import models

from assistants.choices import ACTIVE_RUN_STATUSES
from assistants.models import (
    Assistant,
    File,
    Message,
    Run,
    RunStep,
    Thread,
    VectorStore,
    VectorStoreFileBatch,
)
from engramia_site.errors import NotFound
from tenants.models import Project

Row = TypeVar("Row", bound=models.Model)
NAMES: dict[type[models.Model], str] = {
    Assistant: "assistant",
    Thread: "thread",
    Message: "message",
    Run: "run",
    RunStep: "run step",
    File: "file",
    VectorStore: "vector store",
    VectorStoreFileBatch: "file batch",
}


def find(
    model: type[Row], project: Project, public_id: str, *, lock: bool = False, **scope: Any
) -> Row:
    """The project's object with this id (narrowed by scope, e.g. thread=...), or NotFound."""
    queryset = model._default_manager.filter(project_id=project.pk, public_id=public_id, **scope)
    queryset = queryset.select_related("project")  # audit entries name the project's tenant
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    row = queryset.first()
    if row is None:
        raise NotFound(f"No {NAMES.get(model, 'object')} found with id '{public_id}'.")
    return row


def find_thread(project: Project, public_id: str, *, lock: bool = False) -> Thread:
    """The project's thread with this id, or NotFound."""
    return find(Thread, project, public_id, lock=lock)


def find_run(project: Project, thread: Thread, public_id: str, *, lock: bool = False) -> Run:
    """A run of this thread, or NotFound."""
    run = find(Run, project, public_id, lock=lock, thread=thread)
    run.thread = thread
    return run


def active_run(thread: Thread) -> Run | None:
    """The run holding the thread's run lock, if any."""
    return Run.objects.filter(thread=thread, status__in=ACTIVE_RUN_STATUSES).first()
