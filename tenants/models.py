"""Tenants, projects, memberships, API keys and the audit entry."""

from __future__ import annotations

from typing import Any

from auditlog.models import AbstractLogEntry
from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from tenants.choices import LLMChoice, ReadPath, Role
from tenants.querysets import ProjectQuerySet, TenantQuerySet

slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$",
    "Use 1-64 lowercase letters, digits and inner hyphens.",
)
llm_model_validator = RegexValidator(
    r"^[\w.:/-]{1,100}$",
    "A model name of at most 100 letters, digits and . : / _ - characters.",
)


class Tenant(models.Model):
    """An organisation: the outermost isolation boundary."""

    slug = models.CharField(max_length=64, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]
        permissions = [
            ("tenant_reader", "Read every project of the tenant"),
            ("tenant_editor", "Write every project of the tenant"),
            ("tenant_admin", "Administer every project of the tenant"),
            ("tenant_owner", "Own the tenant"),
        ]

    def __str__(self) -> str:
        return self.slug

    def get_additional_data(self) -> dict[str, Any]:
        return {"tenant_id": self.pk, "tenant": self.slug}


def default_embedding_model() -> str:
    """The embedding model new projects pin: the configured provider's stored name."""
    return {
        "local": "local:all-MiniLM-L6-v2",
        "hash": "hash:384",
        "openai": "openai:text-embedding-3-small",
    }[settings.ENGRAMIA_EMBEDDINGS]


class Project(models.Model):
    """A memory scope inside a tenant (the replacement for a Thread or an Assistant)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="projects")
    slug = models.CharField(max_length=64, validators=[slug_validator])
    name = models.CharField(max_length=200)
    embedding_model = models.CharField(max_length=100, default=default_embedding_model)
    read_path = models.CharField(max_length=16, choices=ReadPath.choices, default=ReadPath.ENGRAMIA)
    instructions = models.TextField(blank=True, default="")
    # The LLM judge of this project; blank means the deployment's ENGRAMIA_LLM / ENGRAMIA_LLM_MODEL.
    # Credentials and base URLs stay in the environment (secrets are never stored in the database).
    llm_provider = models.CharField(
        max_length=16, choices=LLMChoice.choices, blank=True, default=LLMChoice.DEFAULT
    )
    llm_model = models.CharField(
        max_length=100,
        blank=True,
        default="",
        validators=[llm_model_validator],
        help_text="Blank: the vendor's default, or ENGRAMIA_LLM_MODEL for the deployment's vendor.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["tenant__slug", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="project_slug_unique_in_tenant")
        ]
        permissions = [
            ("project_reader", "Read the project"),
            ("project_editor", "Write the project's memory"),
            ("project_admin", "Administer the project"),
            ("project_owner", "Own the project"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant.slug}/{self.slug}"

    @property
    def path(self) -> str:
        return f"{self.tenant.slug}/{self.slug}"

    def get_additional_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"tenant_id": self.tenant_id, "project_id": self.pk}
        reason = getattr(self, "audit_reason", "")
        if reason:
            data["reason"] = reason
        return data


class TenantUserObjectPermission(UserObjectPermissionBase):
    """Direct-FK guardian permission table for tenants (index-friendly filtering)."""

    content_object = models.ForeignKey(Tenant, on_delete=models.CASCADE)


class TenantGroupObjectPermission(GroupObjectPermissionBase):
    """Direct-FK guardian group permission table for tenants."""

    content_object = models.ForeignKey(Tenant, on_delete=models.CASCADE)


class ProjectUserObjectPermission(UserObjectPermissionBase):
    """Direct-FK guardian permission table for projects."""

    content_object = models.ForeignKey(Project, on_delete=models.CASCADE)


class ProjectGroupObjectPermission(GroupObjectPermissionBase):
    """Direct-FK guardian group permission table for projects."""

    content_object = models.ForeignKey(Project, on_delete=models.CASCADE)


class Membership(models.Model):
    """A user's role in a whole tenant (project empty) or in one project."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "tenant"],
                condition=Q(project__isnull=True),
                name="membership_one_tenant_role",
            ),
            models.UniqueConstraint(
                fields=["user", "project"],
                condition=Q(project__isnull=False),
                name="membership_one_project_role",
            ),
        ]

    def __str__(self) -> str:
        scope = self.project or self.tenant
        return f"{self.user} is {self.role} of {scope}"

    def get_additional_data(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "project_id": self.project_id}


class ApiKey(models.Model):
    """A bearer credential of a user, bound to a tenant or one project, capped at a role."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    role = models.CharField(max_length=16, choices=Role.choices)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()

    def get_additional_data(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "project_id": self.project_id}


class AuditEntry(AbstractLogEntry):
    """An audit log entry (django-auditlog) that also records tenant, project and key."""

    tenant = models.ForeignKey(
        Tenant,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    project = models.ForeignKey(
        Project,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    api_key_name = models.CharField(max_length=100, blank=True, default="")

    class Meta(AbstractLogEntry.Meta):
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["tenant", "-timestamp"], name="audit_tenant_time"),
            models.Index(fields=["project", "-timestamp"], name="audit_project_time"),
        ]
