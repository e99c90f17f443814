"""Console app configuration: the admin site Engramia runs is console.site.EngramiaAdminSite."""

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin, with Engramia's site (the unfold theme, dashboard and pages)."""

    default = False
    default_site = "console.site.EngramiaAdminSite"


class ConsoleConfig(AppConfig):
    """Templates, static assets and views of the console."""

    name = "console"
    default = True
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from console.list_speed import install

        install()
