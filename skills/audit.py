"""Audit wiring of the skill registry (django-auditlog; context filled by tenants.audit)."""

from __future__ import annotations

from auditlog.registry import auditlog

from skills.models import Skill, SkillEvaluation, SkillUsage


def register_skill_models() -> None:
    """Log every change to skills, evaluations and pattern links.

    Vectors and the derived evaluation statistics are left out: the former are noise, the latter
    change with every evaluation, which is itself logged.
    """
    auditlog.register(
        Skill, exclude_fields=["embedding", "eval_score", "evaluation_count", "updated_at"]
    )
    auditlog.register(SkillEvaluation)
    auditlog.register(SkillUsage)
