"""Who produced an evaluation: one vocabulary for patterns and skills alike."""

from __future__ import annotations

from django.db import models


class EvaluatorKind(models.TextChoices):
    """The source of a 0-10 score (an LLM judge's evaluations are stored as `llm:<model>`)."""

    HUMAN = "human", "Human"
    IMPORT = "import", "Import default"
    API = "api", "API client"
    AGENT_OUTCOME = "agent_outcome", "Agent run outcome"
    LLM = "llm", "LLM judge"
