"""Helpers of the session API suite: URLs for any session id, and a way to seed history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest


def session_url(session_id: str, action: str = "") -> str:
    """/v1/sessions/<id>[/<action>], the id percent-encoded whole, as the SDK sends it."""
    url = f"/v1/sessions/{quote(session_id, safe='')}"
    return f"{url}/{action}" if action else url


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


@pytest.fixture
def seed_session(db: Any) -> Callable[..., None]:
    """Append items straight through the service (no API call, nothing audited)."""
    from conversations.services import add_session_items

    def seed(project: Any, session_id: str, items: list[Any]) -> None:
        add_session_items(project=project, session_id=session_id, items=items, actor=None)

    return seed
