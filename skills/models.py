"""Skills (tools as registry entries), their superseded versions, evaluations and pattern links."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Cast
from django.utils import timezone
from pgvector.django import HnswIndex, VectorField
from psycopg.types.json import Json

from retrieval.choices import EvaluatorKind
from skills.choices import SkillSource, Visibility
from skills.querysets import SkillQuerySet
from skills.schema import (
    SkillRuleError,
    check_parameters_schema,
    check_tool_name,
    empty_parameters,
    normalise_tags,
)
from tenants.models import Project, Tenant


def _raise_as_validation_error(check: Any, value: Any) -> None:
    try:
        check(value)
    except SkillRuleError as exc:
        raise ValidationError(exc.message, code=exc.code) from None


def validate_tool_name(value: Any) -> None:
    """Model/form validator: a provider-valid tool name."""
    _raise_as_validation_error(check_tool_name, value)


def validate_parameters_schema(value: Any) -> None:
    """Model/form validator: a JSON Schema object."""
    _raise_as_validation_error(check_parameters_schema, value)


def validate_tags(value: Any) -> None:
    """Model/form validator: well-formed tags."""
    _raise_as_validation_error(normalise_tags, value)


class SchemaJSONField(models.JSONField):
    """JSON stored as written (PostgreSQL `json`, not `jsonb`), so a schema keeps its key order.

    jsonb re-sorts object keys, and the order of a tool's properties is the order models tend to
    fill its arguments in: an exported schema should read exactly as its author wrote it.
    """

    def db_type(self, connection: Any) -> str:
        return "json"

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if not prepared:
            value = self.get_prep_value(value)
        return Json(value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return value  # psycopg has already parsed `json` (and kept the order)


def _embedding_index(model_name: str, dimensions: int, index_name: str) -> HnswIndex:
    # A partial expression index per model: the column holds vectors of several sizes, and
    # pgvector can only index a fixed dimension (DESIGN.md, Embeddings).
    return HnswIndex(
        OpClass(Cast("embedding", VectorField(dimensions=dimensions)), name="vector_cosine_ops"),
        name=index_name,
        condition=Q(embedding_model=model_name),
    )


class Skill(models.Model):
    """A tool definition owned by a project (or a whole tenant), searchable and evaluated."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="skills")
    project = models.ForeignKey(
        Project,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="skills",
        help_text="Owning project; empty for a skill owned by the whole tenant.",
    )
    name = models.CharField(max_length=64, validators=[validate_tool_name])
    description = models.TextField(blank=True, default="", max_length=8000)
    parameters = SchemaJSONField(default=empty_parameters, validators=[validate_parameters_schema])
    tags = ArrayField(
        models.CharField(max_length=50), default=list, blank=True, validators=[validate_tags]
    )
    visibility = models.CharField(
        max_length=16, choices=Visibility.choices, default=Visibility.PROJECT
    )
    version = models.PositiveIntegerField(default=1, editable=False)
    source = models.CharField(max_length=16, choices=SkillSource.choices, default=SkillSource.API)
    embedding = VectorField(dimensions=None, null=True, blank=True, editable=False)
    embedding_model = models.CharField(max_length=100, blank=True, default="", editable=False)
    eval_score = models.FloatField(null=True, blank=True, editable=False)
    evaluation_count = models.PositiveIntegerField(default=0, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = SkillQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "name"],
                condition=Q(project__isnull=False),
                name="skill_name_unique_in_project",
            ),
            models.UniqueConstraint(
                fields=["tenant", "name"],
                condition=Q(project__isnull=True),
                name="skill_name_unique_in_tenant",
            ),
            models.CheckConstraint(
                condition=Q(project__isnull=False) | ~Q(visibility=Visibility.PROJECT),
                name="skill_tenant_owned_is_not_project_visible",
            ),
            models.CheckConstraint(
                condition=Q(eval_score__isnull=True) | Q(eval_score__gte=0, eval_score__lte=10),
                name="skill_eval_score_0_10",
            ),
        ]
        indexes = [
            models.Index(fields=["visibility", "tenant"], name="skill_visibility_tenant"),
            GinIndex(fields=["tags"], name="skill_tags_gin"),
            _embedding_index("hash:384", 384, "skill_emb_hash384_hnsw"),
            _embedding_index("local:all-MiniLM-L6-v2", 384, "skill_emb_minilm_hnsw"),
            _embedding_index("openai:text-embedding-3-small", 1536, "skill_emb_oai3small_hnsw"),
        ]

    def __str__(self) -> str:
        owner = self.project.path if self.project is not None else self.tenant.slug
        return f"{self.name} ({owner})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.check_invariants()
        super().save(*args, **kwargs)

    def check_invariants(self) -> None:
        """Refuse a bad name, schema, tag list or owner, whoever saves (service, admin, shell)."""
        errors: dict[str, str] = {}
        for check, value in (
            (check_tool_name, self.name),
            (check_parameters_schema, self.parameters),
            (normalise_tags, self.tags),
        ):
            try:
                check(value)
            except SkillRuleError as exc:
                errors[exc.field] = exc.message
        if self.project_id is None and self.visibility == Visibility.PROJECT:
            errors["visibility"] = "A tenant-owned skill is visible to its tenant at least."
        if self.project is not None and self.project.tenant_id != self.tenant_id:
            errors["project"] = "The project belongs to another tenant."
        if errors:
            raise ValidationError(errors)

    def get_additional_data(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "project_id": self.project_id}


class SkillVersion(models.Model):
    """One version of a skill's interface; a new one starts whenever the parameters change."""

    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    description = models.TextField(blank=True, default="")
    parameters = SchemaJSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["skill", "version"], name="skill_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.skill_id} v{self.version}"


class SkillEvaluation(models.Model):
    """A 0-10 judgement of how well a skill worked, made from the evaluator's own project."""

    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="evaluations")
    project = models.ForeignKey(
        Project,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="The project the evaluation was made from (may be another tenant's).",
    )
    version = models.PositiveIntegerField(help_text="The skill version that was evaluated.")
    score = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(10.0)])
    feedback = models.TextField(blank=True, default="", max_length=8000)
    evaluator = models.CharField(
        max_length=16, choices=EvaluatorKind.choices, default=EvaluatorKind.HUMAN
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(score__gte=0, score__lte=10), name="skill_evaluation_score_0_10"
            )
        ]
        indexes = [models.Index(fields=["skill", "-created_at"], name="skill_eval_skill_time")]

    def __str__(self) -> str:
        return f"{self.score:g}/10 for skill {self.skill_id}"

    def get_additional_data(self) -> dict[str, Any]:
        # Filed under the evaluator's scope: another tenant's audit log never names its users.
        return {"tenant_id": self.project.tenant_id, "project_id": self.project_id}


class SkillUsage(models.Model):
    """A memory pattern whose solution used a skill (pattern id kept loose: apps stay decoupled)."""

    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="usages")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    pattern_id = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["skill", "pattern_id"], name="skill_usage_unique")
        ]
        indexes = [models.Index(fields=["pattern_id"], name="skill_usage_pattern")]

    def __str__(self) -> str:
        return f"pattern {self.pattern_id} used skill {self.skill_id}"

    def get_additional_data(self) -> dict[str, Any]:
        return {"tenant_id": self.project.tenant_id, "project_id": self.project_id}
