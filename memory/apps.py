"""Memory app configuration."""

from django.apps import AppConfig


class MemoryConfig(AppConfig):
    """Patterns, evaluations, documents: learn and recall."""

    name = "memory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from memory.audit import register_memory_models

        register_memory_models()
        import memory.tasks  # noqa: F401  (registers the memory job kinds)
