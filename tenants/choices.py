"""Roles and states of the tenants app."""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    """Roles in increasing order of power; a role includes every lower one."""

    READER = "reader", "Reader"
    EDITOR = "editor", "Editor"
    ADMIN = "admin", "Admin"
    OWNER = "owner", "Owner"

    @property
    def rank(self) -> int:
        return ROLE_ORDER.index(self)

    def covers(self, other: Role) -> bool:
        """True when this role is at least as powerful as other."""
        return self.rank >= Role(other).rank


ROLE_ORDER = [Role.READER, Role.EDITOR, Role.ADMIN, Role.OWNER]


def lower_role(first: Role, second: Role) -> Role:
    """The weaker of two roles (an API key's cap against its user's role)."""
    return first if Role(first).rank <= Role(second).rank else second


class ReadPath(models.TextChoices):
    """Where an application reads memory from during the migration cut-over."""

    OPENAI = "openai", "OpenAI Assistants"
    DUAL = "dual", "Dual (write both, read OpenAI, compare)"
    ENGRAMIA = "engramia", "Engramia"


class LLMChoice(models.TextChoices):
    """A project's LLM judge: the deployment's (ENGRAMIA_LLM), a vendor, or none at all."""

    DEFAULT = "", "Deployment default (ENGRAMIA_LLM)"
    OPENAI = "openai", "OpenAI or OpenAI-compatible"
    ANTHROPIC = "anthropic", "Anthropic"
    NONE = "none", "None (judge disabled)"
