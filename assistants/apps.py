"""Assistants app configuration."""

from django.apps import AppConfig


class AssistantsConfig(AppConfig):
    """Export, import, verification and cut-over of OpenAI Assistants history, and the
    Assistants-compatible API (/openai/v1) that keeps unmigrated code running."""

    name = "assistants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import assistants.openai.tasks
        import assistants.tasks  # noqa: F401  (registers the import job kind)
        from assistants.audit import register_assistants_models

        register_assistants_models()
