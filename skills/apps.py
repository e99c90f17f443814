"""Skills app configuration."""

from django.apps import AppConfig


class SkillsConfig(AppConfig):
    """The skill registry."""

    name = "skills"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from skills.audit import register_skill_models

        register_skill_models()
