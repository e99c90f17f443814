"""Jobs app configuration."""

from django.apps import AppConfig


class JobsConfig(AppConfig):
    """Durable, user-visible jobs run by django-q2 workers."""

    name = "jobs"
    default_auto_field = "django.db.models.BigAutoField"
