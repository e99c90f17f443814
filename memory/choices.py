"""Choices of the memory app."""

from django.db import models


class OnDuplicate(models.TextChoices):
    """What learn does with a near-duplicate in the same project."""

    SKIP = "skip", "Skip"
    REPLACE_WITH_BETTER = "replace_with_better", "Replace with the better one"
    KEEP_BOTH = "keep_both", "Keep both"
