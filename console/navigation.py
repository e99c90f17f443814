"""The sidebar: pages grouped by what staff do, each shown only to those who may open it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse_lazy


def _viewable(label: str) -> Callable[[HttpRequest], bool]:
    """True when the request's user may open the changelist of the model app_label.Model."""

    def check(request: HttpRequest) -> bool:
        model_admin = admin.site._registry.get(apps.get_model(label))
        return model_admin is not None and bool(model_admin.has_view_permission(request))

    return check


def _model(title: str, icon: str, label: str) -> dict[str, Any]:
    app_label, model_name = label.lower().split(".")
    return {
        "title": title,
        "icon": icon,
        "link": reverse_lazy(f"admin:{app_label}_{model_name}_changelist"),
        "permission": _viewable(label),
    }


def _staff(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_staff)


def sidebar(request: HttpRequest) -> list[dict[str, Any]]:
    """The navigation groups of unfold's sidebar (settings.UNFOLD["SIDEBAR"])."""
    return [
        {
            "title": "Memory",
            "items": [
                {
                    "title": "Dashboard",
                    "icon": "dashboard",
                    "link": reverse_lazy("admin:index"),
                    "permission": _staff,
                },
                {
                    "title": "Recall playground",
                    "icon": "manage_search",
                    "link": reverse_lazy("admin:console_playground"),
                    "permission": _staff,
                },
                _model("Patterns", "psychology", "memory.Pattern"),
                _model("Documents", "description", "memory.Document"),
                _model("Conversation sessions", "forum", "conversations.SessionItem"),
            ],
        },
        {
            "title": "Skills",
            "separator": True,
            "items": [_model("Skills", "construction", "skills.Skill")],
        },
        {
            "title": "Audit",
            "separator": True,
            "items": [_model("Audit log", "policy", "tenants.AuditEntry")],
        },
        {
            "title": "Operations",
            "separator": True,
            "items": [
                _model("Jobs", "work_history", "jobs.Job"),
                # django-q2's own tables hold every tenant's job arguments: superusers only.
                _model("Task queue", "queue", "django_q.OrmQ"),
                _model("Successful tasks", "task_alt", "django_q.Success"),
                _model("Failed tasks", "error", "django_q.Failure"),
                _model("Schedules", "schedule", "django_q.Schedule"),
            ],
        },
        {
            "title": "Access",
            "separator": True,
            "items": [
                _model("Tenants", "domain", "tenants.Tenant"),
                _model("Projects", "folder", "tenants.Project"),
                _model("Memberships", "group", "tenants.Membership"),
                _model("API keys", "key", "tenants.ApiKey"),
                _model("Users", "person", "auth.User"),
                _model("Groups", "groups", "auth.Group"),
            ],
        },
    ]
