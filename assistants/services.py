"""Writes of the Assistants toolkit that are not the import itself: queueing an uploaded export."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from assistants.models import ImportUpload
from engramia_site.errors import InvalidInput
from engramia_site.request_context import audited
from jobs.models import Job
from jobs.services import submit_job
from tenants.models import Project

IMPORT_KIND = "import_assistants"


@audited
def queue_assistants_import(
    *, project: Project, actor: Any, data: bytes, options: dict[str, Any]
) -> Job:
    """Store an uploaded NDJSON export and queue the job that imports it (validated options)."""
    if not data.strip():
        raise InvalidInput("The NDJSON export is empty.", field="body")
    with transaction.atomic():
        upload = ImportUpload.objects.create(project=project, data=data, size=len(data))
        return submit_job(
            project=project,
            kind=IMPORT_KIND,
            params={"upload_id": upload.pk, **options},
            actor=actor,
        )
