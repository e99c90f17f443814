"""Fail early, in one line, when the database is unreachable or lacks pgvector >= 0.8."""

from __future__ import annotations

from django.db import connection

MINIMUM_PGVECTOR = (0, 8)


class DatabaseNotReady(Exception):
    """The configured database cannot serve Engramia."""


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:2] if part.isdigit())


def verify_database() -> str:
    """Return the pgvector version available, or raise DatabaseNotReady with the reason."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(installed_version, default_version) "
                "FROM pg_available_extensions WHERE name = 'vector'"
            )
            row = cursor.fetchone()
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseNotReady(f"cannot reach the database: {reason}") from exc
    if row is None:
        raise DatabaseNotReady(
            "the database has no pgvector extension available (install pgvector >= 0.8)"
        )
    if _version_tuple(row[0]) < MINIMUM_PGVECTOR:
        raise DatabaseNotReady(f"pgvector {row[0]} is too old; Engramia needs >= 0.8")
    return str(row[0])
