"""How a run's row changes state: locked reads, status stamps, and ending a run for good."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from assistants.choices import MessageStatus, RunStatus, StepStatus
from assistants.models import Message, Run, RunStep
from memory.providers.chat import Usage

STAMPS = {
    RunStatus.CANCELLED: "cancelled_at",
    RunStatus.FAILED: "failed_at",
    RunStatus.COMPLETED: "completed_at",
}


def locked_run(run_pk: int) -> Run | None:
    """The run's row, locked for this transaction, with its thread and project."""
    return (
        Run.objects.select_for_update(of=("self",))
        .select_related("thread", "project")
        .filter(pk=run_pk)
        .first()
    )


def stamp(run: Run, status: RunStatus) -> list[str]:
    """Set the run's status (and the time it reached it); the fields that changed."""
    run.status = status
    field = STAMPS.get(status)
    if field is None:
        return ["status"]
    setattr(run, field, timezone.now())
    return ["status", field]


def usage_body(usage: Usage, earlier: dict[str, Any] | None = None) -> dict[str, int]:
    """Token usage as OpenAI reports it, added to what the run used before."""
    earlier = earlier or {}
    prompt_tokens = usage.prompt_tokens + int(earlier.get("prompt_tokens", 0))
    completion = usage.completion_tokens + int(earlier.get("completion_tokens", 0))
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
    }


def step_status_for(status: RunStatus) -> StepStatus:
    """What an unfinished step becomes when its run ends this way."""
    return {
        RunStatus.CANCELLED: StepStatus.CANCELLED,
        RunStatus.EXPIRED: StepStatus.EXPIRED,
    }.get(status, StepStatus.FAILED)


def settle(run: Run, status: RunStatus, *, sweep: bool = True, **values: Any) -> None:
    """End a locked run; with sweep, also the steps and messages it left unfinished."""
    for name, value in values.items():
        setattr(run, name, value)
    fields = stamp(run, status)
    run.required_action = None
    run.save(update_fields=[*fields, "required_action", *values])
    if not sweep:
        return
    now = timezone.now()
    for step in RunStep.objects.filter(run=run, status=StepStatus.IN_PROGRESS):
        end_step(step, status, values.get("last_error"), now)
        step.save()
    for message in Message.objects.filter(run=run, status=MessageStatus.IN_PROGRESS):
        message.status = MessageStatus.INCOMPLETE
        message.incomplete_at = now
        message.incomplete_details = {"reason": f"run_{status}"}
        message.save()


def end_step(step: RunStep, status: RunStatus, error: Any, now: Any) -> None:
    """Mark an unfinished step as its run ended (not saved)."""
    step.status = step_status_for(status)
    if step.status == StepStatus.CANCELLED:
        step.cancelled_at = now
    else:
        step.failed_at = now
    step.last_error = error if step.status == StepStatus.FAILED else None
