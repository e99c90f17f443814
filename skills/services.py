"""Every write of the skill registry (keyword-only actor, one transaction each, audited).

Search and the provider exports live in skills.search and skills.exports and are re-exported
here, so callers (API, admin, the Assistants importer, the SDK's local mode) import one module.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from engramia_site.request_context import audited
from retrieval.choices import EvaluatorKind
from retrieval.embeddings import get_embedder
from retrieval.pinned_model import embed_in_current_model
from retrieval.ranking import RECENT_EVALUATIONS, aggregate_eval_score
from skills.choices import SkillSource, Visibility
from skills.exports import to_anthropic_tool, to_openai_tool
from skills.models import Skill, SkillEvaluation, SkillUsage, SkillVersion
from skills.schema import SkillRuleError, empty_parameters, normalise_tags
from skills.search import (
    SkillMatch,
    filter_query,
    filter_skills,
    query_skills,
    search_skills,
    visible_skills,
)
from tenants.models import Project, Tenant, default_embedding_model

__all__ = [
    "SkillMatch",
    "SkillNameTaken",
    "delete_skill",
    "evaluate_skill",
    "filter_query",
    "filter_skills",
    "link_pattern_skill",
    "publish_skill",
    "query_skills",
    "register_function_tools",
    "register_skill",
    "search_skills",
    "to_anthropic_tool",
    "to_openai_tool",
    "unpublish_skill",
    "update_skill",
    "visible_skills",
]


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


class SkillNameTaken(Exception):
    """Another skill of the same owner (project, or tenant) already has this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"A skill named {name!r} already exists here.")
        self.name = name


def _user_or_none(actor: Any) -> Any:
    return actor if getattr(actor, "pk", None) is not None else None


def _rule_errors(exc: SkillRuleError) -> ValidationError:
    return ValidationError({exc.field: ValidationError(exc.message, code=exc.code)})


def embedding_text(name: str, description: str, tags: Iterable[str]) -> str:
    """What a skill's vector is made from: its name as words, its description and its tags."""
    parts = [re.sub(r"[_-]+", " ", name).strip(), description.strip()]
    tag_list = list(tags)
    if tag_list:
        parts.append("tags: " + ", ".join(tag_list))
    return "\n".join(part for part in parts if part)


def _embed(model_name: str, name: str, description: str, tags: Iterable[str]) -> tuple[Any, str]:
    embedder = get_embedder(model_name)
    vector = embedder.embed_documents([embedding_text(name, description, tags)])[0]
    return vector, embedder.name


def _match_current_model(skill: Skill) -> None:
    """Inside the write's transaction: re-embed if the owning project changed model meanwhile.

    A project's re-embedding swap may commit between embedding (done before the transaction)
    and the save; see retrieval.pinned_model.embed_in_current_model.
    """
    if skill.project is None or skill.embedding is None:
        return
    text = embedding_text(skill.name, skill.description, skill.tags)
    embedder, (vector,) = embed_in_current_model(
        skill.project, [text], get_embedder(skill.embedding_model), [list(skill.embedding)]
    )
    skill.embedding, skill.embedding_model = vector, embedder.name


def _owner_model(skill: Skill) -> str:
    return skill.project.embedding_model if skill.project is not None else default_embedding_model()


@audited
def register_skill(
    *,
    actor: Any,
    project: Project | None,
    name: str,
    description: str = "",
    parameters: dict[str, Any] | None = None,
    tags: Iterable[str] = (),
    visibility: Visibility | str = Visibility.PROJECT,
    tenant: Tenant | None = None,
    source: SkillSource | str = SkillSource.API,
) -> Skill:
    """Add a skill owned by project (or, with project None, by the whole tenant); version 1."""
    if project is None and tenant is None:
        raise ValueError("a skill needs an owning project or tenant")
    owner_tenant = project.tenant if project is not None else tenant
    try:
        tag_list = normalise_tags(tags)
    except SkillRuleError as exc:
        raise _rule_errors(exc) from None
    skill = Skill(
        tenant=owner_tenant,
        project=project,
        name=name,
        description=description or "",
        parameters=parameters if parameters is not None else empty_parameters(),
        tags=tag_list,
        visibility=Visibility(visibility),
        source=SkillSource(source),
        created_by=_user_or_none(actor),
    )
    skill.check_invariants()  # fail before paying for an embedding
    # Embedding may call a remote provider: do it before holding a transaction open.
    skill.embedding, skill.embedding_model = _embed(
        _owner_model(skill), skill.name, skill.description, skill.tags
    )
    with transaction.atomic():
        owned = Skill.objects.filter(name=name)
        owned = (
            owned.filter(project=project)
            if project is not None
            else owned.filter(tenant=owner_tenant, project__isnull=True)
        )
        if owned.exists():
            raise SkillNameTaken(name)
        _match_current_model(skill)
        try:
            with transaction.atomic():
                skill.save()
        except IntegrityError:  # a concurrent registration of the same name won the race
            raise SkillNameTaken(name) from None
        _record_version(skill, actor=actor)
    return skill


@audited
def update_skill(
    *,
    actor: Any,
    skill: Skill,
    name: str = UNSET,
    description: str = UNSET,
    parameters: dict[str, Any] = UNSET,
    tags: Iterable[str] = UNSET,
    visibility: Visibility | str = UNSET,
) -> Skill:
    """Change a skill; new parameters start a new version and the old one stays readable."""
    requested = {
        "name": name,
        "description": description,
        "parameters": parameters,
        "tags": tags,
        "visibility": visibility,
    }
    changes = _skill_changes(skill, {f: v for f, v in requested.items() if v is not UNSET})
    if not changes:
        return skill
    new_vector = _reembedding(skill, changes)
    with transaction.atomic():
        # Lock the row so two concurrent parameter changes cannot claim the same version.
        current = (
            Skill.objects.select_for_update(of=("self",)).select_related("project").get(pk=skill.pk)
        )
        changes = {f: v for f, v in changes.items() if getattr(current, f) != v}
        if changes:
            _apply_skill_changes(current, changes, new_vector, actor=actor)
    return current


def _record_version(skill: Skill, *, actor: Any) -> None:
    """Keep the skill's current interface as a readable version."""
    SkillVersion.objects.create(
        skill=skill,
        version=skill.version,
        description=skill.description,
        parameters=skill.parameters,
        created_by=_user_or_none(actor),
    )


def _skill_changes(skill: Skill, requested: dict[str, Any]) -> dict[str, Any]:
    """The requested fields, normalised, that differ from the skill's current values."""
    changes = dict(requested)
    if "description" in changes:
        changes["description"] = changes["description"] or ""
    if "tags" in changes:
        try:
            changes["tags"] = normalise_tags(changes["tags"])
        except SkillRuleError as exc:
            raise _rule_errors(exc) from None
    if "visibility" in changes:
        changes["visibility"] = Visibility(changes["visibility"])
    return {field: value for field, value in changes.items() if getattr(skill, field) != value}


def _reembedding(skill: Skill, changes: dict[str, Any]) -> tuple[Any, str] | None:
    """The new vector when the searchable text changes, after checking the changed skill's rules."""
    if not {"name", "description", "tags"} & changes.keys():
        return None
    probe = Skill(
        tenant_id=skill.tenant_id,
        project=skill.project,
        **{
            field: changes.get(field, getattr(skill, field))
            for field in ("name", "description", "parameters", "tags", "visibility")
        },
    )
    probe.check_invariants()
    return _embed(_owner_model(skill), probe.name, probe.description, probe.tags)


def _apply_skill_changes(
    current: Skill, changes: dict[str, Any], new_vector: Any, *, actor: Any
) -> None:
    """Save the changes on the locked row; a parameters change starts a new version."""
    for field, value in changes.items():
        setattr(current, field, value)
    if new_vector is not None:
        current.embedding, current.embedding_model = new_vector
        _match_current_model(current)
    if "parameters" in changes:
        current.version += 1
    current.updated_at = timezone.now()
    try:
        with transaction.atomic():
            current.save()
    except IntegrityError:
        raise SkillNameTaken(current.name) from None
    if "parameters" in changes:
        _record_version(current, actor=actor)
    elif "description" in changes:
        # Same interface, better words: the current version's text follows the skill.
        SkillVersion.objects.filter(skill=current, version=current.version).update(
            description=current.description
        )


@audited
def publish_skill(
    *, actor: Any, skill: Skill, visibility: Visibility | str = Visibility.PUBLIC
) -> Skill:
    """Make a skill visible to its whole tenant or to every tenant."""
    visibility = Visibility(visibility)
    if visibility == Visibility.PROJECT:
        raise ValidationError({"visibility": "Publishing means tenant or public visibility."})
    return update_skill(actor=actor, skill=skill, visibility=visibility)


@audited
def unpublish_skill(*, actor: Any, skill: Skill) -> Skill:
    """Withdraw a skill to its owner: its project (or, for a tenant-owned skill, its tenant)."""
    private = Visibility.PROJECT if skill.project_id else Visibility.TENANT
    return update_skill(actor=actor, skill=skill, visibility=private)


@audited
def evaluate_skill(
    *,
    actor: Any,
    skill: Skill,
    project: Project,
    score: float,
    feedback: str = "",
    evaluator: EvaluatorKind | str = EvaluatorKind.HUMAN,
) -> SkillEvaluation:
    """Record how well a skill worked, judged from project (which must be able to see it)."""
    try:
        score = float(score)
    except (TypeError, ValueError):
        raise ValidationError({"score": "Must be a number from 0 to 10."}) from None
    if not math.isfinite(score) or not 0.0 <= score <= 10.0:
        raise ValidationError({"score": "Must be a number from 0 to 10."})
    evaluator = EvaluatorKind(evaluator)
    with transaction.atomic():
        locked = (
            Skill.objects.visible_to(project)
            .select_for_update(of=("self",))
            .only("id", "version")
            .filter(pk=skill.pk)
            .first()
        )
        if locked is None:  # missing and not visible answer alike
            raise Skill.DoesNotExist(f"skill {skill.pk} is not visible from {project}")
        evaluation = SkillEvaluation.objects.create(
            skill_id=locked.pk,
            project=project,
            version=locked.version,
            score=score,
            feedback=feedback or "",
            evaluator=evaluator,
            actor=_user_or_none(actor),
        )
        recent = list(
            SkillEvaluation.objects.filter(skill_id=locked.pk)
            .order_by("-created_at", "-id")
            .values_list("score", flat=True)[:RECENT_EVALUATIONS]
        )
        count = SkillEvaluation.objects.filter(skill_id=locked.pk).count()
        eval_score = aggregate_eval_score(recent)
        # Derived statistics: a plain UPDATE, so the audit log records the evaluation, not this.
        Skill.objects.filter(pk=locked.pk).update(eval_score=eval_score, evaluation_count=count)
    skill.eval_score, skill.evaluation_count = eval_score, count
    return evaluation


@audited
def link_pattern_skill(
    *, skill: Skill | int, project: Project, pattern_id: int, actor: Any
) -> SkillUsage:
    """Record that a pattern of project used skill (idempotent); the skill must be visible there.

    The memory app calls this with a pattern it has just stored or recalled in project, so the
    pattern's ownership is its caller's guarantee; only the skill side is checked here.
    """
    skill_id = skill if isinstance(skill, int) else skill.pk
    with transaction.atomic():
        if not Skill.objects.visible_to(project).filter(pk=skill_id).exists():
            raise Skill.DoesNotExist(f"skill {skill_id} is not visible from {project}")
        usage, _created = SkillUsage.objects.get_or_create(
            skill_id=skill_id, pattern_id=int(pattern_id), defaults={"project": project}
        )
    return usage


@audited
def delete_skill(*, actor: Any, skill: Skill) -> None:
    """Remove a skill with its versions, evaluations and pattern links."""
    with transaction.atomic():
        skill.delete()


def _function_tool_fields(index: int, tool: Any) -> dict[str, Any] | None:
    """name/description/parameters of an Assistants function tool; None for other tool types."""
    if not isinstance(tool, dict):
        raise ValidationError({f"tools.{index}": "Expected a tool object."})
    if tool.get("type") != "function":
        return None  # file_search and code_interpreter map to documents and nothing, not skills
    function = tool.get("function")
    if not isinstance(function, dict):
        raise ValidationError({f"tools.{index}.function": "A function tool needs a function."})
    parameters = function.get("parameters")
    if not parameters:
        parameters = empty_parameters()
    elif isinstance(parameters, dict) and "type" not in parameters:
        # The Assistants API accepted a bare {"properties": ...}; it always meant an object.
        parameters = {"type": "object", **parameters}
    return {
        "name": function.get("name"),
        "description": function.get("description") or "",
        "parameters": parameters,
    }


@audited
def register_function_tools(
    *, project: Project, tools: list[dict[str, Any]], actor: Any
) -> list[Skill]:
    """Register an assistant's function tools as project skills; re-running changes nothing.

    Takes the Assistants shape {"type": "function", "function": {"name", "description",
    "parameters"}}; other tool types are skipped. A tool whose name already exists in the
    project updates that skill (new parameters → new version); identical input is a no-op.
    """
    wanted: list[dict[str, Any]] = []
    for index, tool in enumerate(tools):
        fields = _function_tool_fields(index, tool)
        if fields is None:
            continue
        probe = Skill(tenant_id=project.tenant_id, project=project, **fields)
        try:
            probe.check_invariants()
        except ValidationError as exc:
            raise ValidationError(
                {f"tools.{index}.{field}": messages for field, messages in exc.message_dict.items()}
            ) from None
        wanted.append(fields)

    registered: dict[int, Skill] = {}
    with transaction.atomic():
        for fields in wanted:
            existing = Skill.objects.managed_from(project).filter(name=fields["name"]).first()
            if existing is None:
                skill = register_skill(
                    actor=actor, project=project, source=SkillSource.ASSISTANTS, **fields
                )
            else:
                skill = update_skill(
                    actor=actor,
                    skill=existing,
                    description=fields["description"],
                    parameters=fields["parameters"],
                )
            registered[skill.pk] = skill
    return list(registered.values())
