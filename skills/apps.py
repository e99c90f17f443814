"""Skills app configuration."""

from django.apps import AppConfig


class SkillsConfig(AppConfig):
    """The skill registry."""

    name = "skills"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from retrieval.registry import EmbeddedRows, register_embedded_rows
        from skills.audit import register_skill_models
        from skills.models import Skill
        from skills.services import embedding_text

        register_skill_models()
        # A project's re-embedding job moves its own skills too (tenant and public skills keep
        # the model they were embedded with: they belong to no single project).
        register_embedded_rows(
            EmbeddedRows(
                "skill",
                Skill,
                ("name", "description", "tags"),
                lambda row: embedding_text(row.name, row.description, row.tags),
            )
        )
