"""Assistants app configuration."""

from django.apps import AppConfig


class AssistantsConfig(AppConfig):
    """Export, import, verification and cut-over of OpenAI Assistants history."""

    name = "assistants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import assistants.tasks  # noqa: F401  (registers the import job kind)
