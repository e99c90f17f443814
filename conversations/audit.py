"""Audit registration of the conversations app's models."""

from auditlog.registry import auditlog

from conversations.models import SessionItem


def register_conversation_models() -> None:
    """Log removals and admin edits of session items (their content stays out of the log).

    Appends are bulk inserts (chat traffic, not curation) and a clear is logged as one entry
    naming the session (conversations.services.clear_session).
    """
    auditlog.register(SessionItem, exclude_fields=["item"])
