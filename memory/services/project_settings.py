"""Changing a project's memory settings: name, instructions, judge, read path, embedding model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from engramia_site.request_context import audited
from memory.services.reembedding import start_reembedding
from tenants.models import Project
from tenants.services import set_read_path

EDITABLE_FIELDS = ("name", "instructions", "llm_provider", "llm_model")


@dataclass(frozen=True)
class ProjectUpdate:
    """The project as changed, and the re-embedding job a new embedding model started."""

    project: Project
    reembedding_job: Any = None


@audited
def update_project_settings(
    *, project: Project, actor: Any, changes: dict[str, Any]
) -> ProjectUpdate:
    """Apply validated changes in one transaction (each change audited).

    A new embedding model is a re-embedding job, started first: when another one is running
    (ReembeddingInProgress, a Conflict) nothing else changes either. A read path change is the
    migration cut-over and needs `reason`.
    """
    with transaction.atomic():
        job = None
        if "embedding_model" in changes:
            job = start_reembedding(
                project=project, embedding_model=changes["embedding_model"], actor=actor
            )
        changed = [name for name in EDITABLE_FIELDS if name in changes]
        for name in changed:
            setattr(project, name, changes[name])
        if changed:
            project.save(update_fields=changed)
        if "read_path" in changes and changes["read_path"] != project.read_path:
            set_read_path(
                project=project,
                read_path=changes["read_path"],
                reason=changes["reason"],
                actor=actor,
            )
    return ProjectUpdate(project, job)
