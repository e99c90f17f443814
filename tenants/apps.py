"""Tenants app configuration."""

from django.apps import AppConfig


class TenantsConfig(AppConfig):
    """Tenants, projects, roles, API keys and the audit log."""

    name = "tenants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from engramia_site.db_pool import use_recent_check
        from tenants.audit import register_tenant_models
        from tenants.keyscope import connect_signals

        register_tenant_models()
        connect_signals()
        connection_created.connect(use_recent_check, dispatch_uid="engramia.pool_check")
