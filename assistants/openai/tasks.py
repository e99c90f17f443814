"""Job kinds of the Assistants-compatible API: executing runs, indexing large files."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync

from assistants.choices import RunStatus
from assistants.models import Run, VectorStoreFile
from assistants.openai.engine import execute_run, in_thread
from assistants.openai.services.execution import RUN_KIND
from assistants.openai.services.files import INDEX_KIND, index_member
from assistants.openai.services.learning import learn_run
from jobs.registry import job_kind
from memory.providers.chat import close_clients


async def drive_run(run_pk: int, actor: Any) -> dict[str, Any]:
    """Execute a run to its end (or until it awaits tool outputs), then learn it."""
    events = 0
    try:
        async for _ in execute_run(run_pk, actor=actor, streaming=False):
            events += 1
    finally:
        await close_clients()  # this event loop ends with the job
    learned = await in_thread(learn_run, run_pk=run_pk, actor=actor)
    status = await in_thread(
        lambda: Run.objects.filter(pk=run_pk).values_list("status", flat=True).first()
    )
    return {"status": status, "events": events, **learned}


# The statuses execute_run has work for; a run in any other has ended or waits on its client.
EXECUTABLE = (RunStatus.QUEUED, RunStatus.IN_PROGRESS, RunStatus.CANCELLING)


@job_kind(RUN_KIND, timeout=1800)
def run_job(job: Any, ctx: Any) -> dict[str, Any]:
    """Execute a queued run; an attempt cut off mid-run (its worker died) starts its round again.

    A streamed run's job comes once the stream has ended it: only the learning is left, done
    here without an event loop.
    """
    run_pk = int((job.params or {}).get("run") or 0)
    status = (
        Run.objects.filter(pk=run_pk, project_id=job.project_id)
        .values_list("status", flat=True)
        .first()
    )
    if status is None:
        return {"status": "gone"}
    if status not in EXECUTABLE:
        return {"status": status, "events": 0, **learn_run(run_pk=run_pk, actor=job.actor)}
    return async_to_sync(drive_run)(run_pk, job.actor)


@job_kind(INDEX_KIND, timeout=1800)
def index_file_job(job: Any, ctx: Any) -> dict[str, Any]:
    """Chunk and embed a large file added to a vector store."""
    member = (
        VectorStoreFile.objects.select_related("file", "file__project", "project")
        .filter(pk=int((job.params or {}).get("member") or 0), project_id=job.project_id)
        .first()
    )
    if member is None or member.status != "in_progress":
        return {"status": member.status if member else "gone"}
    return {"status": index_member(member, actor=job.actor).status}
