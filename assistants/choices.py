"""States and kinds of the Assistants-compatible objects (OpenAI's own vocabulary)."""

from django.db import models


class RunStatus(models.TextChoices):
    """Where a run is; the first four hold the thread's run lock."""

    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    REQUIRES_ACTION = "requires_action"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    FAILED = "failed"
    COMPLETED = "completed"
    INCOMPLETE = "incomplete"
    EXPIRED = "expired"


ACTIVE_RUN_STATUSES = (
    RunStatus.QUEUED,
    RunStatus.IN_PROGRESS,
    RunStatus.REQUIRES_ACTION,
    RunStatus.CANCELLING,
)
FINISHED_RUN_STATUSES = (
    RunStatus.CANCELLED,
    RunStatus.FAILED,
    RunStatus.COMPLETED,
    RunStatus.INCOMPLETE,
    RunStatus.EXPIRED,
)


class MessageStatus(models.TextChoices):
    """A message is complete, still being written by a run, or cut short."""

    IN_PROGRESS = "in_progress"
    INCOMPLETE = "incomplete"
    COMPLETED = "completed"


class StepType(models.TextChoices):
    """What a run step did: write a message, or call tools."""

    MESSAGE_CREATION = "message_creation"
    TOOL_CALLS = "tool_calls"


class StepStatus(models.TextChoices):
    """Where a run step is."""

    IN_PROGRESS = "in_progress"
    CANCELLED = "cancelled"
    FAILED = "failed"
    COMPLETED = "completed"
    EXPIRED = "expired"


class FileStatus(models.TextChoices):
    """Indexing state of a file in a vector store (and of a batch of them)."""

    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
