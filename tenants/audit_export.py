"""The audit log as CSV, streamed: rows are read in chunks from a server-side cursor and written
as they are read, so an export of any size never sits in memory and starts at once."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from tenants.models import AuditEntry

CHUNK_ROWS = 2000
COLUMNS = [
    "timestamp",
    "tenant",
    "project",
    "actor",
    "api_key",
    "action",
    "resource_type",
    "object_id",
    "object",
    "changes",
    "request_id",
    "remote_addr",
]
# A cell a spreadsheet would run as a formula is written as text (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Line:
    """A file-like object csv.writer writes one row into; the row is returned, not stored."""

    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def change_summary(entry: AuditEntry, separator: str = "; ") -> str:
    """The entry's changes as field: old → new."""
    changes = entry.changes_dict or {}
    return separator.join(
        f"{name}: {values[0]} → {values[1]}"
        for name, values in changes.items()
        if isinstance(values, list | tuple) and len(values) == 2
    )


def _row(entry: AuditEntry) -> list[str]:
    content_type = entry.content_type
    project = entry.project
    return [
        _cell(value)
        for value in (
            entry.timestamp.isoformat(),
            entry.tenant.slug if entry.tenant_id and entry.tenant else entry.tenant_id,
            project.path if entry.project_id and project else entry.project_id,
            entry.actor_email or ("system" if entry.actor_id is None else entry.actor_id),
            entry.api_key_name,
            entry.get_action_display(),
            f"{content_type.app_label}.{content_type.model}" if content_type else "",
            entry.object_pk,
            entry.object_repr,
            change_summary(entry),
            entry.cid,
            entry.remote_addr,
        )
    ]


def audit_csv_lines(queryset: QuerySet[AuditEntry]) -> Iterator[str]:
    """The header, then one CSV line per entry of queryset, read CHUNK_ROWS at a time."""
    writer = csv.writer(_Line())
    yield writer.writerow(COLUMNS)
    rows = queryset.select_related("content_type", "tenant", "project", "project__tenant")
    for entry in rows.iterator(chunk_size=CHUNK_ROWS):
        yield writer.writerow(_row(entry))
