"""Jobs app configuration."""

from django.apps import AppConfig


class JobsConfig(AppConfig):
    """Durable, user-visible jobs run by django-q2 workers."""

    name = "jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from engramia_site.env import ConfigurationError
        from jobs.audit import register_job_model
        from jobs.conf import job_modules
        from jobs.registry import import_job_modules

        register_job_model()
        try:
            import_job_modules()
        except ImportError as exc:
            raise ConfigurationError(
                f"ENGRAMIA_JOB_MODULES={','.join(job_modules())!r}: {exc}"
            ) from exc
