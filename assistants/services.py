"""Writes of the Assistants toolkit that are not the import itself: queueing an uploaded export."""

from __future__ import annotations

from typing import Any

from assistants.importer import authorize_grouping
from engramia_site.errors import InvalidInput
from engramia_site.request_context import audited
from jobs.models import Job
from jobs.services import submit_with_upload
from tenants.models import ApiKey, Project

IMPORT_KIND = "import_assistants"


@audited
def queue_assistants_import(
    *, project: Project, actor: Any, api_key: ApiKey, data: bytes, options: dict[str, Any]
) -> Job:
    """Store an uploaded NDJSON export and queue the job that imports it (validated options).

    Grouping into other projects is checked against the key now (a 403 before anything is
    stored) and again by the job, since the key's user may lose the role meanwhile.
    """
    authorize_grouping(api_key=api_key, project=project, group_by=options["group_by"])
    if not data.strip():
        raise InvalidInput("The NDJSON export is empty.", field="body")
    return submit_with_upload(
        project=project,
        kind=IMPORT_KIND,
        content=data,
        params={"api_key_id": api_key.pk, **options},
        actor=actor,
    )
