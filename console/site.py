"""Engramia's admin site: the unfold theme, the dashboard as its home, and the console's pages."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.templatetags.static import static
from django.urls import URLPattern, path
from unfold.sites import UnfoldAdminSite


def theme_stylesheet(request: HttpRequest) -> str:
    """The theme's colour variables (unfold renders them inline otherwise)."""
    return static("console/theme.css")


def console_stylesheet(request: HttpRequest) -> str:
    """The console's own classes: highlighted code, bars, diffs, htmx's indicator."""
    return static("console/console.css")


def highlight_stylesheet(request: HttpRequest) -> str:
    """The colours of server-side highlighted code (engramia_site.highlight)."""
    return static("console/pygments.css")


def htmx_config_script(request: HttpRequest) -> str:
    """Turns off htmx's inline indicator style (console.css carries its rules)."""
    return static("console/htmx-config.js")


def favicon(request: HttpRequest) -> str:
    """The console's icon (a file: the browser would otherwise ask for /favicon.ico)."""
    return static("console/favicon.svg")


class EngramiaAdminSite(UnfoldAdminSite):
    """The admin at /admin/: curation, the recall playground, dashboards and audit review."""

    site_header = "Engramia"
    site_title = "Engramia admin"
    index_title = "Dashboard"
    index_template = "console/dashboard.html"

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        # The colours come from theme.css: an inline <style> would need 'unsafe-inline'.
        context["colors"] = None
        return context

    def extra_urls(self) -> list[URLPattern]:
        """The console's own pages, next to the model admins (unfold calls this)."""
        from console.playground import playground_view

        return [
            path("playground/", self.admin_view(playground_view), name="console_playground"),
        ]

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        from console.dashboard import dashboard_context

        context = {
            **self.each_context(request),
            "title": self.index_title,
            "subtitle": None,
            **dashboard_context(request),
            **(extra_context or {}),
        }
        request.current_app = self.name
        return TemplateResponse(request, self.index_template, context)
