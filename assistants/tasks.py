"""Job kinds of the Assistants toolkit: an uploaded export is imported by a job."""

from __future__ import annotations

import io
from typing import Any

from assistants.importer import ImportNotAllowed, import_assistants_export
from assistants.services import IMPORT_KIND
from jobs.exceptions import JobFailed
from jobs.registry import job_kind
from jobs.services import job_upload
from tenants.models import ApiKey


@job_kind(IMPORT_KIND, timeout=6 * 3600)
def import_assistants_job(job: Any, ctx: Any) -> dict[str, Any]:
    """POST /v1/import/assistants: import an uploaded export (idempotent by message id)."""
    upload = job_upload(job)
    if upload is None:
        raise JobFailed("the uploaded export is gone; upload it again")
    # Grouping is re-checked against the key that queued the job; without it, it cannot be.
    key_id = job.params.get("api_key_id")
    api_key = ApiKey.objects.select_related("user").filter(pk=key_id).first() if key_id else None
    group_by = job.params.get("group_by", "none")
    if group_by != "none" and api_key is None:
        upload.delete()
        raise JobFailed(f"group_by={group_by} needs the tenant-wide admin key that queued it")

    def progress(done: int, total: int) -> None:
        ctx.progress(done, total)
        ctx.check_cancelled()

    # A provider outage is retried by the runner: batches already stored stay stored and the
    # retry skips them (idempotent by message id); bad options fail the job with the reason.
    try:
        summary = import_assistants_export(
            project=job.project,
            stream=io.BytesIO(bytes(upload.data)),
            group_by=group_by,
            eval_score=job.params.get("eval_score", 5.0),
            dry_run=job.params.get("dry_run", False),
            actor=job.actor,
            api_key=api_key,
            progress=progress,
        )
    except ImportNotAllowed:
        upload.delete()  # refused for good: the runner fails the job with the reason
        raise
    upload.delete()
    return summary.to_dict()
