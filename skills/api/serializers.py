"""Shapes of the skills API: validate and shape only (no permissions, no writes)."""

from __future__ import annotations

import re
from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from retrieval.choices import EvaluatorKind
from skills.choices import SearchScope, ToolFormat, Visibility
from skills.models import Skill, SkillEvaluation, SkillVersion
from skills.schema import (
    MAX_TAGS,
    TAG_INPUT,
    TAG_LIST_INPUT,
    TOOL_NAME,
    TOOL_NAME_RULE,
    SkillRuleError,
    check_parameters_schema,
    check_tool_name,
    empty_parameters,
    normalise_tags,
)
from skills.search import DEFAULT_LIMIT, MAX_LIMIT
from tenants.api.strict import StrictSerializer


def _apply(check: Any, value: Any) -> Any:
    try:
        return check(value)
    except SkillRuleError as exc:
        raise serializers.ValidationError(exc.message, code=exc.code) from None


class SkillSerializer(serializers.ModelSerializer):
    """A skill as callers see it; `project` is named only inside the owner's own tenant."""

    tenant = serializers.CharField(source="tenant.slug", read_only=True)
    project = serializers.SerializerMethodField()
    editable = serializers.SerializerMethodField()

    class Meta:
        model = Skill
        fields = [
            "id",
            "name",
            "description",
            "parameters",
            "tags",
            "visibility",
            "version",
            "tenant",
            "project",
            "editable",
            "eval_score",
            "evaluation_count",
            "source",
            "embedding_model",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_project(self, skill: Skill) -> str | None:
        caller = self.context.get("project")
        if skill.project is None or caller is None or caller.tenant_id != skill.tenant_id:
            return None
        return skill.project.slug

    def get_editable(self, skill: Skill) -> bool:
        return bool(getattr(skill, "managed", False))


class SkillMatchSerializer(SkillSerializer):
    """A skill found by semantic search, with its score (and, on request, why)."""

    similarity = serializers.SerializerMethodField()
    score = serializers.SerializerMethodField()

    class Meta(SkillSerializer.Meta):
        fields = [*SkillSerializer.Meta.fields, "similarity", "score"]
        read_only_fields = fields

    def _match(self, skill: Skill) -> Any:
        return self.context["matches"][skill.pk]

    def get_similarity(self, skill: Skill) -> float | None:
        value = self._match(skill).similarity
        return None if value is None else round(value, 6)

    def get_score(self, skill: Skill) -> float | None:
        value = self._match(skill).score
        return None if value is None else round(value, 6)

    def to_representation(self, instance: Skill) -> dict[str, Any]:
        data = super().to_representation(instance)
        if self.context.get("explain"):
            data["explain"] = self._match(instance).explain()
        return data


class SkillListItemSerializer(SkillSerializer):
    """A skill as GET /v1/skills lists it: a `q` search adds `similarity` and `score` (and, with
    `explain`, why); a plain listing has neither. It documents the list; it shapes nothing."""

    similarity = serializers.FloatField(required=False, allow_null=True)
    score = serializers.FloatField(required=False, allow_null=True)
    explain = serializers.DictField(required=False)

    class Meta(SkillSerializer.Meta):
        fields = [*SkillSerializer.Meta.fields, "similarity", "score", "explain"]
        read_only_fields = SkillSerializer.Meta.fields


# Tags are checked together by normalise_tags (errors name `tags`); these say it in the schema.
def _ecma(regex: re.Pattern[str]) -> str:
    """A Python regex anchored with \\A...\\Z as the schema writes it (ECMA: ^...$)."""
    return regex.pattern.replace(r"\A", "^").replace(r"\Z", "$")


@extend_schema_field({"type": "string", "maxLength": 50, "pattern": _ecma(TAG_INPUT)})
class TagField(serializers.CharField):
    """One tag as sent (stripped and lower-cased before it is checked)."""


@extend_schema_field({"type": "string", "pattern": _ecma(TAG_LIST_INPUT)})
class TagListField(serializers.CharField):
    """A `tags` query value: tags separated by commas."""


@extend_schema_field(
    {
        "type": "object",
        "description": "A JSON Schema (draft 2020-12) whose top level is an object.",
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "enum": ["object"]},
            "properties": {
                "type": "object",
                "additionalProperties": {"oneOf": [{"type": "object"}, {"type": "boolean"}]},
            },
        },
    }
)
class ToolParametersField(serializers.JSONField):
    """A tool's parameters (check_parameters_schema decides)."""


class SkillWriteSerializer(StrictSerializer):
    """POST /v1/skills (and, partially, PATCH /v1/skills/<id>)."""

    name = serializers.CharField(
        max_length=64,
        trim_whitespace=False,
        validators=[RegexValidator(TOOL_NAME, TOOL_NAME_RULE, code="invalid_tool_name")],
    )
    description = serializers.CharField(
        max_length=8000, required=False, allow_blank=True, default=""
    )
    parameters = ToolParametersField(required=False, default=empty_parameters)
    tags = serializers.ListField(
        child=TagField(max_length=50, trim_whitespace=False),
        required=False,
        default=list,
        max_length=MAX_TAGS,
    )
    visibility = serializers.ChoiceField(
        choices=Visibility.choices, required=False, default=Visibility.PROJECT
    )

    def validate_name(self, value: str) -> str:
        _apply(check_tool_name, value)
        return value

    def validate_parameters(self, value: Any) -> Any:
        _apply(check_parameters_schema, value)
        return value

    def validate_tags(self, value: list[str]) -> list[str]:
        return _apply(normalise_tags, value)


class SkillQuerySerializer(serializers.Serializer):
    """GET /v1/skills query: q (semantic), tags, name, scope, limit, explain."""

    q = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, help_text="Semantic search text."
    )
    tags = serializers.ListField(
        child=TagListField(),
        required=False,
        help_text="Tags every result has (repeat the parameter, or separate with commas).",
    )
    name = serializers.CharField(
        max_length=64, required=False, allow_blank=True, help_text="Part of the name."
    )
    scope = serializers.ChoiceField(
        choices=SearchScope.choices, required=False, default=SearchScope.ALL
    )
    limit = serializers.IntegerField(
        min_value=1,
        max_value=MAX_LIMIT,
        required=False,
        default=DEFAULT_LIMIT,
        help_text="Results of a `q` search (a plain listing pages with page and page_size).",
    )
    explain = serializers.BooleanField(
        required=False, default=False, help_text="With `q`: each result's score factor by factor."
    )
    eval_weighted = serializers.BooleanField(
        required=False, default=True, help_text="With `q`: rank by evaluations too."
    )

    def validate_tags(self, value: list[str]) -> list[str]:
        return _apply(normalise_tags, value)


class SkillEvaluationCreateSerializer(StrictSerializer):
    """POST /v1/skills/<id>/evaluations."""

    score = serializers.FloatField(min_value=0.0, max_value=10.0)
    feedback = serializers.CharField(max_length=8000, required=False, allow_blank=True, default="")
    # "agent" is the registry's earlier spelling of agent_outcome, still accepted.
    evaluator = serializers.ChoiceField(
        choices=[*EvaluatorKind.values, "agent"], required=False, default=EvaluatorKind.HUMAN
    )

    def validate_evaluator(self, value: str) -> str:
        return EvaluatorKind.AGENT_OUTCOME if value == "agent" else value


class SkillEvaluationSerializer(serializers.ModelSerializer):
    """An evaluation as recorded, with the skill's resulting aggregate."""

    skill_id = serializers.IntegerField(read_only=True)
    skill_eval_score = serializers.FloatField(source="skill.eval_score", read_only=True)
    skill_evaluation_count = serializers.IntegerField(
        source="skill.evaluation_count", read_only=True
    )

    class Meta:
        model = SkillEvaluation
        fields = [
            "id",
            "skill_id",
            "version",
            "score",
            "feedback",
            "evaluator",
            "created_at",
            "skill_eval_score",
            "skill_evaluation_count",
        ]
        read_only_fields = fields


class SkillVersionSerializer(serializers.ModelSerializer):
    """One version of a skill's interface."""

    current = serializers.SerializerMethodField()

    class Meta:
        model = SkillVersion
        fields = ["version", "current", "description", "parameters", "created_at"]
        read_only_fields = fields

    def get_current(self, version: SkillVersion) -> bool:
        return version.version == self.context["current_version"]


class ToolQuerySerializer(serializers.Serializer):
    """GET /v1/skills/<id>/tool query."""

    format = serializers.ChoiceField(
        choices=ToolFormat.choices, required=False, default=ToolFormat.OPENAI
    )
