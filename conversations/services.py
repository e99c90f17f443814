"""Every read and write of session history: get, append, pop, clear (one project at a time)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from auditlog.context import disable_auditlog
from auditlog.models import LogEntry as BaseLogEntry
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Count, Max
from django.utils import timezone

from conversations.models import SessionItem
from engramia_site.errors import Conflict
from engramia_site.request_context import audited
from tenants.models import AuditEntry, Project

# Agents SDK items nest a few levels; a bound keeps every recursive JSON step below Python's.
MAX_ITEM_DEPTH = 100
# What one call may ask for; the API and the SDK's local mode both check these, so both modes
# accept and refuse the same input.
MAX_SESSION_ID = 255
MAX_ITEMS_PER_CALL = 1000
MAX_LIMIT = 10_000
# One API read returns a page of the latest items: this many by default, at most MAX_PAGE.
DEFAULT_PAGE = 100
MAX_PAGE = 1000


class SessionFull(Conflict):
    """Appending would take the session past ENGRAMIA_SESSION_MAX_ITEMS; nothing was stored."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="items", code="session_full")


def session_max_items() -> int:
    """How many items one session may hold (ENGRAMIA_SESSION_MAX_ITEMS)."""
    return int(settings.ENGRAMIA_SESSION_MAX_ITEMS)


def _lock_session(project: Project, session_id: str) -> None:
    """Serialize writers of one session until the transaction ends (positions stay dense)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"engramia:session:{project.pk}:{session_id}"],
        )


def item_json_problem(value: Any) -> str | None:
    """Why a JSON value cannot be stored in jsonb, or None (iterative: depth is untrusted)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > MAX_ITEM_DEPTH:
            return f"it is nested more than {MAX_ITEM_DEPTH} levels deep"
        if isinstance(current, str):
            if "\x00" in current:
                return "it contains the null character U+0000"
        elif isinstance(current, float):
            if not math.isfinite(current):
                return "it contains NaN or an infinite number"
        elif isinstance(current, dict):
            for key, inner in current.items():
                if "\x00" in str(key):
                    return "it contains the null character U+0000"
                stack.append((inner, depth + 1))
        elif isinstance(current, list | tuple):
            stack.extend((inner, depth + 1) for inner in current)
    return None


def session_items_problem(items: list[Any]) -> str | None:
    """Why a list of items to append cannot be stored, or None."""
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            return f"Item {index} is not a JSON object."
        problem = item_json_problem(item)
        if problem:
            return f"Item {index} cannot be stored: {problem}."
    return None


def _as_json(item: Any) -> Any:
    """An input item as plain JSON (pydantic models dumped, everything else checked).

    The SDK dumps items the same way before sending them (engramia.memory), so local and
    remote mode store identical JSON. What jsonb cannot hold is a ValueError.
    """
    dump = getattr(item, "model_dump", None)
    if callable(dump):
        item = dump(mode="json", exclude_unset=True)
    problem = item_json_problem(item)
    if problem:
        raise ValueError(f"the item cannot be stored: {problem}")
    return json.loads(json.dumps(item, allow_nan=False))


def session_items(*, project: Project, session_id: str, limit: int | None = None) -> list[Any]:
    """The session's items in order; with a positive limit, only the latest `limit` of them."""
    items = SessionItem.objects.filter(project=project, session_id=session_id)
    if limit is None or limit < 0:
        return list(items.order_by("position").values_list("item", flat=True))
    if limit == 0:
        return []
    latest = list(items.order_by("-position").values_list("item", flat=True)[:limit])
    latest.reverse()
    return latest


@dataclass(frozen=True)
class SessionPage:
    """Up to `limit` of a session's latest items before a position, in order, and what is older."""

    items: list[Any]
    # Pass as `before` to read the items older than these; None when there are none.
    next_before: int | None


def session_page(
    *, project: Project, session_id: str, limit: int, before: int | None = None
) -> SessionPage:
    """The latest `limit` items of the session (older than position `before`), in order."""
    if limit <= 0:
        return SessionPage(items=[], next_before=None)
    rows = SessionItem.objects.filter(project=project, session_id=session_id)
    if before is not None:
        rows = rows.filter(position__lt=before)
    # One row more than asked tells whether older items exist.
    latest = list(rows.order_by("-position").values_list("position", "item")[: limit + 1])
    more = len(latest) > limit
    latest = latest[:limit]
    latest.reverse()
    return SessionPage(
        items=[item for _, item in latest], next_before=latest[0][0] if more else None
    )


@audited
@transaction.atomic
def add_session_items(*, project: Project, session_id: str, items: list[Any], actor: Any) -> int:
    """Append items to the session; returns how many were added (SessionFull past the cap)."""
    if not items:
        return 0
    payloads = [_as_json(item) for item in items]
    _lock_session(project, session_id)
    held = SessionItem.objects.filter(project=project, session_id=session_id).aggregate(
        last=Max("position"), count=Count("pk")
    )
    last, count = held["last"] or 0, held["count"]
    cap = session_max_items()
    if count + len(payloads) > cap:
        raise SessionFull(
            f"The session holds {count} items; adding {len(payloads)} would pass its limit of "
            f"{cap} (ENGRAMIA_SESSION_MAX_ITEMS). Pop or clear items first."
        )
    now = timezone.now()
    SessionItem.objects.bulk_create(
        SessionItem(
            project=project,
            session_id=session_id,
            position=last + offset,
            item=payload,
            created_at=now,
        )
        for offset, payload in enumerate(payloads, start=1)
    )
    return len(payloads)


@audited
@transaction.atomic
def pop_session_item(*, project: Project, session_id: str, actor: Any) -> Any | None:
    """Remove and return the session's latest item (audited), or None when it is empty."""
    _lock_session(project, session_id)
    latest = (
        SessionItem.objects.select_related("project")
        .filter(project=project, session_id=session_id)
        .order_by("-position")
        .first()
    )
    if latest is None:
        return None
    item = latest.item
    latest.delete()
    return item


@audited
@transaction.atomic
def clear_session(*, project: Project, session_id: str, actor: Any) -> int:
    """Delete every item of the session; one audit entry names the session and the count."""
    _lock_session(project, session_id)
    user = actor if getattr(actor, "pk", None) else None
    with disable_auditlog():  # one entry for the clear, not one per message
        removed, _ = SessionItem.objects.filter(project=project, session_id=session_id).delete()
    AuditEntry.objects.create(
        content_type=ContentType.objects.get_for_model(SessionItem),
        object_pk=session_id[:255],
        object_id=None,
        object_repr=f"session {session_id}"[:200],
        action=BaseLogEntry.Action.DELETE,
        changes={"session_id": [session_id, "None"], "items": [str(removed), "0"]},
        additional_data={
            "tenant_id": project.tenant_id,
            "project_id": project.pk,
            "session_id": session_id,
            "cleared_items": removed,
        },
        # An explicit actor skips the context's fill-in (tenants.audit), so name it here too.
        actor=user,
        actor_email=getattr(user, "email", None) or None,
        timestamp=timezone.now(),
    )
    return removed
