"""Evaluations: human, judge, import and agent-outcome scores, and what they add up to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from engramia_site.request_context import audited
from memory.models import Evaluation, Pattern
from memory.providers.chat import ChatNotConfigured, ChatProvider, get_chat
from memory.providers.judge import EvalResult, evaluate_solution, normalize_feedback
from memory.providers.llm import LLMNotConfigured, LLMProvider, get_llm, llm_settings
from retrieval.choices import EvaluatorKind
from retrieval.ranking import RECENT_EVALUATIONS, aggregate_eval_score
from tenants.models import Project


def refresh_eval_score(pattern: Pattern) -> None:
    """Recompute the pattern's score from its own recent evaluations (never a global list)."""
    recent = list(
        Evaluation.objects.filter(pattern_id=pattern.pk)
        .order_by("-created_at", "-pk")
        .values_list("score", "created_at")[:RECENT_EVALUATIONS]
    )
    pattern.eval_score = aggregate_eval_score([score for score, _ in recent])
    pattern.eval_count = Evaluation.objects.filter(pattern_id=pattern.pk).count()
    pattern.last_evaluated_at = recent[0][1] if recent else None
    pattern.decayed_eval_score = None
    Pattern.objects.filter(pk=pattern.pk).update(
        eval_score=pattern.eval_score,
        eval_count=pattern.eval_count,
        last_evaluated_at=pattern.last_evaluated_at,
        decayed_eval_score=None,
    )


@audited
@transaction.atomic
def add_evaluation(
    *,
    pattern: Pattern,
    score: float,
    evaluator: str = EvaluatorKind.HUMAN,
    feedback: str = "",
    actor: Any,
) -> Evaluation:
    """Record a 0-10 evaluation of a pattern and refresh its derived score."""
    if not 0.0 <= float(score) <= 10.0:
        raise ValueError("score must be between 0 and 10")
    Pattern.objects.select_for_update().filter(pk=pattern.pk).first()  # serialize score updates
    evaluation = Evaluation.objects.create(
        pattern=pattern,
        score=float(score),
        feedback=feedback or "",
        feedback_key=normalize_feedback(feedback)[:255] if feedback else "",
        evaluator=str(evaluator),
        actor=actor if getattr(actor, "pk", None) else None,
        created_at=timezone.now(),
    )
    refresh_eval_score(pattern)
    return evaluation


@audited
def record_outcome(
    *,
    project: Project,
    pattern_ids: Sequence[int],
    score: float,
    feedback: str = "",
    actor: Any,
) -> int:
    """Credit the patterns a run recalled with the run's outcome; returns how many were credited."""
    credited = 0
    for pattern in Pattern.objects.for_project(project).filter(pk__in=list(pattern_ids)):
        add_evaluation(
            pattern=pattern,
            score=score,
            evaluator=EvaluatorKind.AGENT_OUTCOME,
            feedback=feedback,
            actor=actor,
        )
        credited += 1
    return credited


def _refuse_if_off(project: Project) -> None:
    if project.llm_provider == "none":
        raise LLMNotConfigured(
            f"project {project.slug!r} has llm_provider 'none'; PATCH /v1/project with "
            "llm_provider openai or anthropic (or blank for the deployment's ENGRAMIA_LLM) to "
            "enable it"
        )


def llm_for(project: Project) -> LLMProvider:
    """The project's LLM judge: its own vendor and model, else the deployment's (ENGRAMIA_LLM).

    Raises LLMNotConfigured when the project (or, by default, the deployment) has none.
    """
    _refuse_if_off(project)
    return get_llm(project.llm_provider or None, project.llm_model or None)


def judge_configured(project: Project) -> bool:
    """Whether the project has an LLM judge (checked without building its client)."""
    try:
        _refuse_if_off(project)
        llm_settings(project.llm_provider or None, project.llm_model or None)
    except LLMNotConfigured:
        return False
    return True


def chat_for(project: Project) -> ChatProvider:
    """The project's LLM for conversations (Assistants runs): the judge's vendor and setup.

    Raises ChatNotConfigured when the project (or, by default, the deployment) has none.
    """
    try:
        _refuse_if_off(project)
    except LLMNotConfigured as exc:
        raise ChatNotConfigured(str(exc)) from exc
    return get_chat(project.llm_provider or None)


@audited
def evaluate_with_judge(
    *,
    project: Project,
    task: str,
    code: str,
    output: str | None = None,
    num_evals: int = 3,
    pattern: Pattern | None = None,
    actor: Any,
    llm: LLMProvider | None = None,
) -> EvalResult:
    """Grade a solution with the project's LLM judge; record it on the pattern when given."""
    judge = llm or llm_for(project)
    result = evaluate_solution(judge, task=task, code=code, output=output, num_evals=num_evals)
    if pattern is not None:
        add_evaluation(
            pattern=pattern,
            score=result.median_score,
            evaluator=result.evaluator,
            feedback=result.feedback,
            actor=actor,
        )
    return result


def feedback_summary(project: Project, *, limit: int = 20) -> list[dict[str, Any]]:
    """Recurring evaluator feedback in the project, most frequent first."""
    rows = (
        Evaluation.objects.filter(pattern__project=project)
        .exclude(feedback_key="")
        .values("feedback_key")
        .annotate(count=Count("id"), last_seen=Max("created_at"), example=Max("feedback"))
        .order_by("-count", "-last_seen")[:limit]
    )
    return [
        {
            "feedback": row["example"],
            "count": row["count"],
            "last_seen": row["last_seen"],
        }
        for row in rows
    ]
