"""Conversations app configuration."""

from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    """Session items: per-session linear history for chat apps (EngramiaSession)."""

    name = "conversations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from conversations.audit import register_conversation_models

        register_conversation_models()
