"""Jobs in the admin: a filterable list, a read-only detail and a cancel action."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django_q import admin as django_q_admin  # noqa: F401 - registers django-q2's admins now
from django_q.models import Failure, OrmQ, Schedule, Success
from unfold.admin import ModelAdmin

from jobs.exceptions import JobNotCancellable, JobNotRetryable
from jobs.models import Job
from jobs.services import cancel_job, retry_job
from tenants.admin_scope import ScopedAdminMixin, ScopedRelatedFilter, restrict_to_superusers
from tenants.choices import Role

# django-q2's own admins (queue, results, schedules) hold every tenant's job arguments. Its admin
# module is imported here, ahead of autodiscovery, so those admins exist to be restricted.
restrict_to_superusers(Schedule, Success, Failure, OrmQ)


def _pretty_json(value: Any) -> str:
    if value in (None, "", {}, []):
        return "—"
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))


@admin.register(Job)
class JobAdmin(ScopedAdminMixin, ModelAdmin):
    """Jobs of the staff member's projects; records are never edited, only cancelled."""

    scope_field = "project_id"
    change_role = Role.EDITOR
    list_display = [
        "id",
        "kind",
        "project",
        "status",
        "progress_bar",
        "duration",
        "short_error",
        "attempts_used",
        "actor_name",
        "created_at",
    ]
    list_filter = ["status", "kind", ("project", ScopedRelatedFilter)]
    list_select_related = ["project", "project__tenant", "actor"]
    search_fields = ["kind", "actor__email", "actor_label", "api_key_name", "request_id"]
    date_hierarchy = "created_at"
    actions = ["cancel_jobs", "retry_jobs"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "project",
                    "kind",
                    "status",
                    "progress_bar",
                    "duration",
                    "attempts_used",
                    "error",
                ]
            },
        ),
        ("Who", {"fields": ["actor_name", "api_key_name", "request_id"]}),
        (
            "When",
            {
                "fields": [
                    "created_at",
                    "started_at",
                    "finished_at",
                    "heartbeat_at",
                    "requeue_at",
                    "worker",
                    "cancel_requested",
                ]
            },
        ),
        ("Data", {"fields": ["params_json", "result_json", "checkpoint_json"]}),
    ]
    readonly_fields = [
        "project",
        "kind",
        "status",
        "progress_bar",
        "duration",
        "attempts_used",
        "error",
        "actor_name",
        "api_key_name",
        "request_id",
        "created_at",
        "started_at",
        "finished_at",
        "heartbeat_at",
        "requeue_at",
        "worker",
        "cancel_requested",
        "params_json",
        "result_json",
        "checkpoint_json",
    ]

    @admin.display(description="progress")
    def progress_bar(self, job: Job) -> str:
        # A <progress> element: a bar without an inline style (the admin's CSP).
        if job.progress_total:
            return format_html(
                '<progress class="eng-bar" max="{}" value="{}"></progress> {} / {}',
                job.progress_total,
                min(job.progress_done, job.progress_total),
                job.progress_done,
                job.progress_total,
            )
        return str(job.progress_done) if job.progress_done else "—"

    @admin.display(description="duration")
    def duration(self, job: Job) -> str:
        if job.started_at is None:
            return "—"
        end = job.finished_at or timezone.now()
        seconds = max(0, int((end - job.started_at).total_seconds()))
        text = f"{seconds // 3600}h {seconds % 3600 // 60}m" if seconds >= 3600 else ""
        text = text or (f"{seconds // 60}m {seconds % 60}s" if seconds >= 60 else f"{seconds}s")
        return text if job.finished_at else f"{text} (running)"

    @admin.display(description="error")
    def short_error(self, job: Job) -> str:
        return (job.error[:120] + "…") if len(job.error) > 120 else (job.error or "")

    @admin.display(description="attempts", ordering="attempts")
    def attempts_used(self, job: Job) -> str:
        return f"{job.attempts} / {job.max_attempts}"

    @admin.display(description="actor", ordering="actor__email")
    def actor_name(self, job: Job) -> str:
        name = (job.actor.email or job.actor.get_username()) if job.actor else job.actor_label
        return f"{name} (key {job.api_key_name})" if job.api_key_name else (name or "—")

    @admin.display(description="params")
    def params_json(self, job: Job) -> str:
        return _pretty_json(job.params)

    @admin.display(description="result")
    def result_json(self, job: Job) -> str:
        return _pretty_json(job.result)

    @admin.display(description="checkpoint")
    def checkpoint_json(self, job: Job) -> str:
        return _pretty_json(job.checkpoint)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        """Staff may cancel where they hold at least the editor role."""
        return self._may_change(request, None)

    @admin.action(description="Cancel the selected jobs", permissions=["cancel"])
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        # response_action has already left out the jobs where the user is not an editor.
        cancelled = requested = finished = 0
        for job in queryset:
            try:
                outcome = cancel_job(job, actor=request.user)
            except JobNotCancellable:
                finished += 1
                continue
            if outcome.status == "cancelled":
                cancelled += 1
            else:
                requested += 1
        self.message_user(
            request,
            f"Cancelled {cancelled} job(s); asked {requested} running job(s) to stop.",
        )
        if finished:
            self.message_user(
                request, f"Skipped {finished} finished job(s).", level=messages.WARNING
            )

    @admin.action(description="Retry the selected failed or cancelled jobs", permissions=["cancel"])
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        retried, skipped = [], 0
        for job in queryset.select_related("project"):
            try:
                retried.append(f"#{retry_job(job, actor=request.user).pk}")
            except JobNotRetryable:
                skipped += 1
        if retried:
            self.message_user(request, f"Submitted again as job(s) {', '.join(retried)}.")
        if skipped:
            self.message_user(
                request,
                f"Skipped {skipped} job(s) that neither failed nor were cancelled.",
                level=messages.WARNING,
            )
