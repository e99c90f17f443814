"""Job kinds of the Assistants toolkit: an uploaded export is imported by a job."""

from __future__ import annotations

import io
from typing import Any

from assistants.importer import import_assistants_export
from assistants.models import ImportUpload
from assistants.services import IMPORT_KIND
from jobs.exceptions import JobFailed
from jobs.registry import job_kind


@job_kind(IMPORT_KIND, timeout=6 * 3600)
def import_assistants_job(job: Any, ctx: Any) -> dict[str, Any]:
    """POST /v1/import/assistants: import an uploaded export (idempotent by message id)."""
    upload = ImportUpload.objects.filter(pk=job.params["upload_id"], project=job.project).first()
    if upload is None:
        raise JobFailed("the uploaded export is gone; upload it again")

    def progress(done: int, total: int) -> None:
        ctx.progress(done, total)
        ctx.check_cancelled()

    # A provider outage is retried by the runner: batches already stored stay stored and the
    # retry skips them (idempotent by message id); bad options fail the job with the reason.
    summary = import_assistants_export(
        project=job.project,
        stream=io.BytesIO(bytes(upload.data)),
        group_by=job.params.get("group_by", "none"),
        eval_score=job.params.get("eval_score", 5.0),
        dry_run=job.params.get("dry_run", False),
        actor=job.actor,
        progress=progress,
    )
    upload.delete()
    return summary.to_dict()
