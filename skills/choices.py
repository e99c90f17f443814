"""Visibilities, sources and search scopes of the skill registry (evaluators: retrieval.choices)."""

from __future__ import annotations

from django.db import models


class Visibility(models.TextChoices):
    """Who may see a skill: its project, its whole tenant, or every tenant."""

    PROJECT = "project", "Project"
    TENANT = "tenant", "Tenant"
    PUBLIC = "public", "Public"


class SkillSource(models.TextChoices):
    """How a skill entered the registry."""

    API = "api", "API"
    ADMIN = "admin", "Admin"
    ASSISTANTS = "assistants", "OpenAI Assistants import"


class SearchScope(models.TextChoices):
    """The `scope` filter of a skill search."""

    PROJECT = "project", "Owned by the caller's project"
    TENANT = "tenant", "Owned inside the caller's tenant"
    PUBLIC = "public", "Published to every tenant"
    ALL = "all", "Everything the caller may see"


class ToolFormat(models.TextChoices):
    """Provider formats a skill exports to."""

    OPENAI = "openai", "OpenAI (Responses / Agents SDK function tool)"
    ANTHROPIC = "anthropic", "Anthropic (Messages API tool)"
