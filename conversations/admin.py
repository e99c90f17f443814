"""Session history in the admin: read-only, scoped to the staff user's projects."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from unfold.admin import ModelAdmin

from conversations.models import SessionItem
from tenants.admin_scope import ScopedAdminMixin, ScopedRelatedFilter


@admin.register(SessionItem)
class SessionItemAdmin(ScopedAdminMixin, ModelAdmin):
    """Conversation items by project and session; history is written by agents, not edited."""

    list_display = ["session_id", "position", "role", "project", "created_at"]
    list_filter = [("project", ScopedRelatedFilter)]
    list_select_related = ["project", "project__tenant"]
    search_fields = ["session_id"]
    ordering = ["project", "session_id", "position"]
    readonly_fields = ["project", "session_id", "position", "item", "created_at"]

    @admin.display(description="role / type")
    def role(self, obj: SessionItem) -> str:
        return obj.role

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
