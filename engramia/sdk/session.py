"""`EngramiaSession`: the Agents SDK Session protocol on Engramia's database.

The direct replacement for an Assistants Thread's linear history: items per session id, scoped
to the Memory's project, kept in PostgreSQL (conversations.SessionItem), a clear audited.
Works in both modes: local calls the conversations services in-process; remote calls
/v1/sessions/<id>/items, /pop and DELETE /v1/sessions/<id> with the Memory's API key (reading
needs the reader role, writing and clearing the editor role).
"""

from __future__ import annotations

from typing import Any

from agents.memory import SessionSettings
from agents.memory.session_settings import resolve_session_limit

from engramia.errors import EngramiaConfigError
from engramia.memory import Memory

__all__ = ["EngramiaSession"]

MAX_SESSION_ID = 255


class EngramiaSession:
    """Conversation history for `Runner.run(..., session=EngramiaSession("user-42", memory))`."""

    session_settings: SessionSettings | None = None

    def __init__(
        self,
        session_id: str,
        memory: Memory | None = None,
        *,
        session_settings: SessionSettings | None = None,
    ) -> None:
        if not isinstance(session_id, str) or not session_id.strip():
            raise EngramiaConfigError("session_id must be a non-empty string")
        if len(session_id) > MAX_SESSION_ID:
            raise EngramiaConfigError(f"session_id must be at most {MAX_SESSION_ID} characters")
        self.session_id = session_id
        self.memory = memory if memory is not None else Memory()
        self.session_settings = session_settings or SessionSettings()

    def __repr__(self) -> str:
        return f"<EngramiaSession {self.session_id!r} in {self.memory.project}>"

    async def get_items(self, limit: int | None = None) -> list[Any]:
        """The history in order; with a limit, the latest `limit` items (still in order)."""
        effective = resolve_session_limit(limit, self.session_settings)
        items: list[Any] = await self.memory._asession_call(
            "get", {"session_id": self.session_id, "limit": effective}
        )
        return items

    async def add_items(self, items: list[Any]) -> None:
        """Append items to the history."""
        if not items:
            return
        await self.memory._asession_call(
            "add", {"session_id": self.session_id, "items": list(items)}
        )

    async def pop_item(self) -> Any | None:
        """Remove and return the latest item, or None when the history is empty."""
        return await self.memory._asession_call("pop", {"session_id": self.session_id})

    async def clear_session(self) -> None:
        """Delete the whole history (one audit entry names the session)."""
        await self.memory._asession_call("clear", {"session_id": self.session_id})
