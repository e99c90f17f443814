"""Tenants app configuration."""

from django.apps import AppConfig


class TenantsConfig(AppConfig):
    """Tenants, projects, roles, API keys and the audit log."""

    name = "tenants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tenants.audit import register_tenant_models

        register_tenant_models()
