"""The objects of the Assistants-compatible API (/openai/v1), stored per project.

Each row has OpenAI's prefixed id (`public_id`: asst_…, thread_…, msg_…), unique within its
project: imported threads keep the ids they had at OpenAI, so the same id may exist in two
projects, and every lookup is scoped to the caller's project first.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from assistants.choices import (
    ACTIVE_RUN_STATUSES,
    FileStatus,
    MessageStatus,
    RunStatus,
    StepStatus,
    StepType,
)
from engramia_site.json_field import DepthSafeJSONField
from tenants.models import Project
from tenants.querysets import ProjectScopedQuerySet


def auto_tool_choice() -> str:
    """A run's default tool_choice."""
    return "auto"


class CompatObject(models.Model):
    """A project's object with an OpenAI id and a creation time (the list cursor's order)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    public_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(
                fields=["project", "public_id"], name="%(app_label)s_%(class)s_public_id"
            )
        ]
        indexes = [
            models.Index(fields=["project", "created_at", "id"], name="%(class)s_order"),
        ]

    def __str__(self) -> str:
        return self.public_id

    def get_additional_data(self) -> dict[str, Any]:
        return {"tenant_id": self.project.tenant_id, "project_id": self.project_id}


class Assistant(CompatObject):
    """An assistant definition: model, instructions, tools and their resources."""

    name = models.CharField(max_length=256, null=True, blank=True)
    description = models.CharField(max_length=512, null=True, blank=True)
    model = models.CharField(max_length=256)
    instructions = models.TextField(null=True, blank=True)
    tools = DepthSafeJSONField(default=list, blank=True)
    tool_resources = DepthSafeJSONField(default=dict, blank=True)
    metadata = DepthSafeJSONField(default=dict, blank=True)
    temperature = models.FloatField(null=True, blank=True)
    top_p = models.FloatField(null=True, blank=True)
    response_format = DepthSafeJSONField(null=True, blank=True)
    reasoning_effort = models.CharField(max_length=16, null=True, blank=True)

    class Meta(CompatObject.Meta):
        pass


class Thread(CompatObject):
    """A conversation: its messages and the runs that answered them."""

    metadata = DepthSafeJSONField(default=dict, blank=True)
    tool_resources = DepthSafeJSONField(default=dict, blank=True)

    class Meta(CompatObject.Meta):
        pass


class Run(CompatObject):
    """One execution of an assistant on a thread, with the parameters it was given."""

    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="runs")
    assistant = models.ForeignKey(Assistant, null=True, on_delete=models.SET_NULL, related_name="+")
    assistant_ref = models.CharField(max_length=64, help_text="the assistant's id at creation")
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED)
    model = models.CharField(max_length=256)
    instructions = models.TextField(blank=True, default="")
    additional_instructions = models.TextField(blank=True, default="")
    tools = DepthSafeJSONField(default=list, blank=True)
    tool_resources = DepthSafeJSONField(default=dict, blank=True)
    metadata = DepthSafeJSONField(default=dict, blank=True)
    temperature = models.FloatField(null=True, blank=True)
    top_p = models.FloatField(null=True, blank=True)
    max_prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    max_completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    truncation_strategy = DepthSafeJSONField(default=dict, blank=True)
    tool_choice = DepthSafeJSONField(default=auto_tool_choice, blank=True)
    parallel_tool_calls = models.BooleanField(default=True)
    response_format = DepthSafeJSONField(null=True, blank=True)
    reasoning_effort = models.CharField(max_length=16, null=True, blank=True)
    required_action = DepthSafeJSONField(null=True, blank=True)
    last_error = DepthSafeJSONField(null=True, blank=True)
    incomplete_details = DepthSafeJSONField(null=True, blank=True)
    usage = DepthSafeJSONField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Engramia's side of the run: how it executes, what it recalled, what it learned.
    streamed = models.BooleanField(default=False)
    job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recalled_pattern_ids = DepthSafeJSONField(default=list, blank=True)
    learned_pattern_id = models.BigIntegerField(null=True, blank=True)
    learned = models.BooleanField(default=False)

    class Meta:
        constraints = [
            *CompatObject.Meta.constraints,
            # The run lock: a thread has at most one run that is not finished.
            models.UniqueConstraint(
                fields=["thread"],
                condition=Q(status__in=ACTIVE_RUN_STATUSES),
                name="run_one_active_per_thread",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "created_at", "id"], name="run_order"),
            models.Index(fields=["thread", "created_at", "id"], name="run_thread_order"),
        ]

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_RUN_STATUSES


class Message(CompatObject):
    """A message of a thread: a user's, or one a run wrote."""

    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16)
    # OpenAI's content parts as returned: [{"type": "text", "text": {"value", "annotations"}}].
    content = DepthSafeJSONField(default=list, blank=True)
    attachments = DepthSafeJSONField(default=list, blank=True)
    metadata = DepthSafeJSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.COMPLETED
    )
    incomplete_details = DepthSafeJSONField(null=True, blank=True)
    assistant_ref = models.CharField(max_length=64, blank=True, default="")
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    run_ref = models.CharField(max_length=64, blank=True, default="")
    completed_at = models.DateTimeField(null=True, blank=True)
    incomplete_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = CompatObject.Meta.constraints
        indexes = [
            models.Index(fields=["project", "created_at", "id"], name="message_order"),
            models.Index(fields=["thread", "created_at", "id"], name="message_thread_order"),
        ]

    def text(self) -> str:
        """The message's text parts joined."""
        parts = [
            part["text"]["value"]
            for part in self.content or []
            if isinstance(part, dict) and part.get("type") == "text"
        ]
        return "\n\n".join(parts)


class RunStep(CompatObject):
    """One step of a run: the message it wrote, or the tool calls it made."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    type = models.CharField(max_length=20, choices=StepType.choices)
    status = models.CharField(
        max_length=16, choices=StepStatus.choices, default=StepStatus.IN_PROGRESS
    )
    step_details = DepthSafeJSONField(default=dict, blank=True)
    last_error = DepthSafeJSONField(null=True, blank=True)
    usage = DepthSafeJSONField(null=True, blank=True)
    metadata = DepthSafeJSONField(default=dict, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = CompatObject.Meta.constraints
        indexes = [models.Index(fields=["run", "created_at", "id"], name="step_run_order")]


class File(CompatObject):
    """An uploaded file (purpose `assistants`): its bytes, searchable once in a vector store."""

    filename = models.CharField(max_length=255)
    purpose = models.CharField(max_length=32)
    bytes = models.PositiveBigIntegerField(default=0)
    content = models.BinaryField()

    class Meta(CompatObject.Meta):
        pass


class VectorStore(CompatObject):
    """A searchable set of files, backed by Engramia documents."""

    name = models.CharField(max_length=256, null=True, blank=True)
    metadata = DepthSafeJSONField(default=dict, blank=True)
    expires_after = DepthSafeJSONField(null=True, blank=True)
    last_active_at = models.DateTimeField(null=True, blank=True)

    class Meta(CompatObject.Meta):
        pass


class VectorStoreFileBatch(CompatObject):
    """Files added to a vector store in one request."""

    vector_store = models.ForeignKey(VectorStore, on_delete=models.CASCADE, related_name="batches")
    status = models.CharField(
        max_length=16, choices=FileStatus.choices, default=FileStatus.IN_PROGRESS
    )

    class Meta(CompatObject.Meta):
        pass


class VectorStoreFile(models.Model):
    """A file in a vector store, with the document its chunks were stored as."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    vector_store = models.ForeignKey(VectorStore, on_delete=models.CASCADE, related_name="files")
    file = models.ForeignKey(File, on_delete=models.CASCADE, related_name="memberships")
    batch = models.ForeignKey(
        VectorStoreFileBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="files"
    )
    document = models.ForeignKey(
        "memory.Document", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=FileStatus.choices, default=FileStatus.IN_PROGRESS
    )
    last_error = DepthSafeJSONField(null=True, blank=True)
    attributes = DepthSafeJSONField(default=dict, blank=True)
    chunking_strategy = DepthSafeJSONField(default=dict, blank=True)
    usage_bytes = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["vector_store", "file"], name="vector_store_file_once")
        ]
        indexes = [
            models.Index(
                fields=["vector_store", "created_at", "id"], name="vector_store_file_order"
            )
        ]

    def __str__(self) -> str:
        return f"{self.file_id} in {self.vector_store_id}"

    def get_additional_data(self) -> dict[str, Any]:
        return {"tenant_id": self.project.tenant_id, "project_id": self.project_id}
