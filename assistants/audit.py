"""Audit registration of the Assistants-compatible objects (django-auditlog)."""

from auditlog.registry import auditlog

from assistants.models import (
    Assistant,
    File,
    Message,
    Run,
    RunStep,
    Thread,
    VectorStore,
    VectorStoreFile,
    VectorStoreFileBatch,
)


def register_assistants_models() -> None:
    """Log every change to assistants, threads, messages, runs, files and vector stores.

    What users wrote (message content, file bytes) and run bookkeeping that changes with every
    token count stays out of the log; who created, changed or deleted what, and each status a
    run or step passed through, is in it.
    """
    auditlog.register(Assistant)
    auditlog.register(Thread)
    auditlog.register(Message, exclude_fields=["content"])
    auditlog.register(Run, exclude_fields=["usage", "recalled_pattern_ids"])
    auditlog.register(RunStep, exclude_fields=["step_details", "usage"])
    auditlog.register(File, exclude_fields=["content"])
    auditlog.register(VectorStore, exclude_fields=["last_active_at"])
    auditlog.register(VectorStoreFile)
    auditlog.register(VectorStoreFileBatch)
