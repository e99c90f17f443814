"""Changelist rendering without unfold's per-row header rebuild.

unfold's items_for_result (0.91) rebuilds every column header (sort URLs and all) for each row:
50 rows x 9 columns of headers per page, most of a pattern list's server time at any size. The
headers depend on the changelist only, so they are built once per changelist and reused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from unfold.templatetags import unfold_list

_build_headers = unfold_list.result_headers


def result_headers_once(cl: Any) -> Iterator[dict[str, Any]]:
    """The changelist's column headers, built on first use and reused for every row."""
    headers = getattr(cl, "_console_headers", None)
    if headers is None:
        headers = cl._console_headers = list(_build_headers(cl))
    return iter(headers)


def install() -> None:
    """Make unfold's list tags use result_headers_once (idempotent)."""
    unfold_list.result_headers = result_headers_once  # type: ignore[assignment]
