"""Choices of the memory app."""

from django.db import models


class OnDuplicate(models.TextChoices):
    """What learn does with a near-duplicate in the same project."""

    SKIP = "skip", "Skip"
    REPLACE_WITH_BETTER = "replace_with_better", "Replace with the better one"
    KEEP_BOTH = "keep_both", "Keep both"


class EvaluatorKind(models.TextChoices):
    """Who produced an evaluation (an LLM judge is stored as llm:<model>)."""

    HUMAN = "human", "Human"
    IMPORT = "import", "Import default"
    API = "api", "API client"
    AGENT_OUTCOME = "agent_outcome", "Agent run outcome"
    LLM = "llm", "LLM judge"


class EmbeddedKind(models.TextChoices):
    """What kind of row a staged re-embedding vector belongs to."""

    PATTERN = "pattern", "Pattern"
    CHUNK = "chunk", "Document chunk"
    SKILL = "skill", "Skill"
