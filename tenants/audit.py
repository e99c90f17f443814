"""Audit wiring: which models are logged; how each entry learns its actor, tenant and request."""

from __future__ import annotations

from typing import Any

from auditlog.registry import auditlog
from django.db.models.signals import pre_save
from django.dispatch import receiver

from engramia_site.request_context import current_context
from tenants.models import ApiKey, AuditEntry, Membership, Project, Tenant


def register_tenant_models() -> None:
    """Log every change to the tenants app's models (secrets and usage stamps excluded)."""
    auditlog.register(Tenant)
    auditlog.register(Project)
    auditlog.register(Membership)
    auditlog.register(ApiKey, exclude_fields=["key_hash", "last_used_at"])


@receiver(pre_save, sender=AuditEntry)
def fill_audit_context(sender: type[AuditEntry], instance: AuditEntry, **kwargs: Any) -> None:
    """Stamp the entry with the acting principal, request id, tenant and project."""
    context = current_context()
    if context is not None:
        actor = context.actor
        if instance.actor_id is None and actor is not None and getattr(actor, "pk", None):
            instance.actor = actor
            instance.actor_email = getattr(actor, "email", None) or None
        if not instance.actor_email and context.label:
            instance.actor_email = context.label
        if not instance.api_key_name:
            instance.api_key_name = context.api_key_name
        if not instance.cid:
            instance.cid = context.request_id
        if instance.remote_addr is None and context.remote_addr:
            instance.remote_addr = context.remote_addr
    data = instance.additional_data or {}
    if context is not None and context.transport and "transport" not in data:
        data = {**data, "transport": context.transport}
        instance.additional_data = data
    if instance.tenant_id is None and data.get("tenant_id"):
        instance.tenant_id = data["tenant_id"]
    if instance.project_id is None and data.get("project_id"):
        instance.project_id = data["project_id"]
