"""Memory app configuration."""

from django.apps import AppConfig


class MemoryConfig(AppConfig):
    """Patterns, evaluations, documents: learn and recall."""

    name = "memory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from memory.audit import register_memory_models
        from memory.models import Chunk, Pattern
        from memory.services.task_text import pattern_text
        from retrieval.registry import EmbeddedRows, register_embedded_rows
        from retrieval.search import configure_connection

        register_memory_models()
        connection_created.connect(configure_connection, dispatch_uid="retrieval.hnsw_session")
        register_embedded_rows(
            EmbeddedRows("pattern", Pattern, ("task",), lambda row: pattern_text(row.task))
        )
        register_embedded_rows(EmbeddedRows("chunk", Chunk, ("text",), lambda row: row.text))
        import memory.operations
        import memory.tasks  # noqa: F401  (registers re-embedding and index builds)
