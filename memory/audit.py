"""Audit registration of the memory app's models."""

from auditlog.registry import auditlog

from memory.models import Document, Evaluation, Pattern


def register_memory_models() -> None:
    """Log every change to patterns, evaluations and documents (vectors excluded)."""
    auditlog.register(
        Pattern,
        exclude_fields=["embedding", "updated_at", "learned_at", "decayed_eval_score", "task_hash"],
    )
    auditlog.register(Evaluation, exclude_fields=["feedback_key"])
    auditlog.register(Document)
