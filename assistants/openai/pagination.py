"""OpenAI's cursor lists: {"object": "list", "data", "first_id", "last_id", "has_more"}.

Rows are ordered by (created_at, id), so objects made in the same second keep a stable order;
`after` and `before` name an object of the same list, and the page holds the `limit` objects
next to it in the requested order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.db.models import Q

from engramia_site.errors import InvalidInput


@dataclass(frozen=True)
class Page:
    """One page of a cursor list."""

    rows: list[Any]
    has_more: bool


def _after(row: Any, newer: bool) -> Q:
    """Rows after row in ascending (newer) or descending order of (created_at, id)."""
    if newer:
        return Q(created_at__gt=row.created_at) | Q(created_at=row.created_at, id__gt=row.pk)
    return Q(created_at__lt=row.created_at) | Q(created_at=row.created_at, id__lt=row.pk)


def cursor_page(
    queryset: models.QuerySet[Any],
    *,
    limit: int,
    order: str,
    after: str | None = None,
    before: str | None = None,
    key: str = "public_id",
) -> Page:
    """The page of queryset the cursor parameters ask for."""
    ascending = order == "asc"
    if after:
        queryset = queryset.filter(_after(_cursor(queryset, key, after, "after"), ascending))
    if before:
        queryset = queryset.filter(_after(_cursor(queryset, key, before, "before"), not ascending))
    if before and not after:
        # The `limit` rows nearest the cursor are the last ones in the requested order.
        fields = ("created_at", "id") if not ascending else ("-created_at", "-id")
        rows = list(queryset.order_by(*fields)[: limit + 1])
        has_more = len(rows) > limit
        return Page(list(reversed(rows[:limit])), has_more)
    fields = ("created_at", "id") if ascending else ("-created_at", "-id")
    rows = list(queryset.order_by(*fields)[: limit + 1])
    return Page(rows[:limit], len(rows) > limit)


def _cursor(queryset: models.QuerySet[Any], key: str, value: str, name: str) -> Any:
    row = queryset.filter(**{key: value}).only("id", "created_at").first()
    if row is None:
        raise InvalidInput(f"No object {value!r} in this list to page from.", field=name)
    return row


def list_body(page: Page, shape: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """The list object of a page, each row shaped as the API returns it."""
    data = [shape(row) for row in page.rows]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": page.has_more,
    }
