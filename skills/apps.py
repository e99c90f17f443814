"""Skills app configuration."""

from django.apps import AppConfig


class SkillsConfig(AppConfig):
    """The skill registry."""

    name = "skills"
    default_auto_field = "django.db.models.BigAutoField"
