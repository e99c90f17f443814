"""Memory app configuration."""

from django.apps import AppConfig


class MemoryConfig(AppConfig):
    """Patterns, evaluations, documents: learn and recall."""

    name = "memory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from memory.audit import register_memory_models
        from memory.services.recall import configure_connection

        register_memory_models()
        connection_created.connect(configure_connection, dispatch_uid="memory.hnsw_session")
        import memory.tasks  # noqa: F401  (registers the memory job kinds)
