"""What Engramia keeps of a completed run: the exchange learned as a pattern, then judged."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from assistants.choices import MessageStatus, RunStatus
from assistants.models import Message, Run
from engramia_site.request_context import audited
from memory.inputs import MAX_CODE, MAX_TASK

SOURCE = "assistants-api"


def _exchange(run: Run) -> tuple[str, str]:
    """The user message the run answered and the answer it wrote."""
    own = list(
        Message.objects.filter(run=run, status=MessageStatus.COMPLETED).order_by("created_at", "id")
    )
    answer = "\n\n".join(message.text() for message in own if message.text())
    question = (
        Message.objects.filter(thread_id=run.thread_id, role="user", created_at__lte=run.created_at)
        .order_by("-created_at", "-id")
        .first()
    )
    return (question.text() if question else ""), answer


@audited
def learn_run(*, run_pk: int, actor: Any) -> dict[str, Any]:
    """Learn a completed run's exchange (source assistants-api, run_id the run's id) once, and
    queue the judge's evaluation of it when the project has a judge."""
    from memory.operations import EVALUATE, LEARN
    from memory.services.evaluations import judge_configured

    run = Run.objects.select_related("project", "thread").filter(pk=run_pk).first()
    if run is None or run.status != RunStatus.COMPLETED or run.learned:
        return {"learned": False}
    task, answer = _exchange(run)
    pattern_id, judged = None, False
    if task.strip() and answer.strip():
        outcome = LEARN.run(
            project=run.project,
            actor=actor,
            data={
                "task": task[:MAX_TASK],
                "code": answer[:MAX_CODE],
                "source": SOURCE,
                "run_id": run.public_id,
                "external_id": f"{SOURCE}:{run.public_id}",
                "metadata": {
                    "thread_id": run.thread.public_id,
                    "assistant_id": run.assistant_ref,
                    "model": run.model,
                },
            },
        )
        pattern_id = outcome.result.pattern_id
        judged = outcome.result.stored and judge_configured(run.project)
    with transaction.atomic():
        locked = Run.objects.select_for_update(of=("self",)).get(pk=run.pk)
        if locked.learned:
            return {"learned": False}
        locked.learned = True
        locked.learned_pattern_id = pattern_id
        locked.save(update_fields=["learned", "learned_pattern_id"])
        if judged:
            EVALUATE.submit(
                project=run.project,
                actor=actor,
                data={"task": task[:MAX_TASK], "code": answer[:MAX_CODE], "pattern_id": pattern_id},
            )
    return {"learned": pattern_id is not None, "pattern_id": pattern_id, "judged": judged}
