"""Memory app configuration."""

from django.apps import AppConfig


class MemoryConfig(AppConfig):
    """Patterns, evaluations, documents: learn and recall."""

    name = "memory"
    default_auto_field = "django.db.models.BigAutoField"
