"""Memory's operations: raw input validated once, one service call, a domain result.

The API's views, the job kinds of the ⧗ endpoints, the SDK's local mode and the MCP server all
go through these, so every limit and rule is written once (`memory.inputs`) and every refusal is
a domain error (`engramia_site.errors`) that each caller maps its own way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from engramia_site.errors import InvalidInput, NotFound
from jobs.exceptions import JobFailed
from jobs.operations import Operation, validate_input
from jobs.registry import job_kind
from jobs.services import job_upload
from memory import inputs
from memory.choices import OnDuplicate
from memory.models import Document, Pattern
from memory.providers.judge import EvalResult
from memory.querysets import PatternQuerySet
from memory.recall_stats import count_recall
from memory.services import (
    LearnItem,
    LearnResult,
    RecallResult,
    add_document,
    evaluate_with_judge,
    feedback_summary,
    learn_pattern,
    learn_patterns_bulk,
    record_outcome,
    run_aging,
    update_pattern,
)
from memory.services import (
    delete_pattern as remove_pattern,
)
from memory.services.documents import DOCUMENTS_KIND, DocumentError, extract_text
from memory.services.recall import recall_patterns
from retrieval.choices import EvaluatorKind
from tenants.models import Project


@dataclass(frozen=True)
class LearnOutcome:
    """What learn did, and how many live patterns the project holds when it stored a new one."""

    result: LearnResult
    pattern_count: int | None = None


def _learn(*, project: Project, actor: Any, **params: Any) -> LearnOutcome:
    result = learn_pattern(project=project, actor=actor, **params)
    return LearnOutcome(result, result.pattern_count)


def _describe_learn(outcome: LearnOutcome) -> dict[str, Any]:
    result = outcome.result
    body: dict[str, Any] = {
        "pattern_id": result.pattern_id,
        "stored": result.stored,
        "duplicate_of": result.duplicate_of,
    }
    if result.replaced:
        body["replaced"] = True
    if outcome.pattern_count is not None:
        body["pattern_count"] = outcome.pattern_count
    return body


LEARN: Operation[LearnOutcome] = Operation(
    kind="learn",
    input=inputs.LearnSerializer,
    perform=_learn,
    describe=_describe_learn,
    created=lambda outcome: outcome.pattern_count is not None,
).as_job_kind(timeout=300)


@dataclass(frozen=True)
class EvaluateOutcome:
    """The judge's verdict, and the pattern it was recorded on (if one was named)."""

    result: EvalResult
    pattern_id: int | None


def _evaluate(
    *, project: Project, actor: Any, pattern_id: int | None = None, **params: Any
) -> EvaluateOutcome:
    pattern = None
    if pattern_id is not None:
        pattern = Pattern.objects.for_project(project).filter(pk=pattern_id).first()
        if pattern is None:
            raise InvalidInput("No such pattern in this project.", field="pattern_id")
    result = evaluate_with_judge(project=project, actor=actor, pattern=pattern, **params)
    return EvaluateOutcome(result, pattern.pk if pattern is not None else None)


def _describe_evaluation(outcome: EvaluateOutcome) -> dict[str, Any]:
    result = outcome.result
    return {
        "median_score": result.median_score,
        "scores": result.scores,
        "spread": result.spread,
        "feedback": result.feedback,
        "evaluator": result.evaluator,
        "pattern_id": outcome.pattern_id,
    }


EVALUATE: Operation[EvaluateOutcome] = Operation(
    kind="evaluate",
    input=inputs.EvaluateSerializer,
    perform=_evaluate,
    describe=_describe_evaluation,
).as_job_kind(timeout=600)


AGING: Operation[dict[str, int]] = Operation(
    kind="aging",
    input=inputs.AgingSerializer,
    perform=lambda *, project, actor: run_aging(project=project, actor=actor),
    describe=dict,
).as_job_kind(timeout=3600)


def _describe_document(document: Document) -> dict[str, Any]:
    return {
        "id": document.pk,
        "name": document.name,
        "chunk_count": document.chunk_count,
        "size": document.size,
        "content_type": document.content_type,
        "created_at": document.created_at.isoformat(),
    }


# Its job kind is document_job below: a queued document's content is stored apart.
ADD_DOCUMENT: Operation[Document] = Operation(
    kind=DOCUMENTS_KIND,
    input=inputs.DocumentCreateSerializer,
    perform=add_document,
    describe=_describe_document,
    created=lambda document: True,
)


def document_from_file(
    fields: dict[str, Any], data: bytes, *, file_name: str, file_type: str
) -> dict[str, Any]:
    """The JSON form of an uploaded file: its text read (PDFs under their bounds), or a 400."""
    try:
        text = extract_text(data, name=file_name, content_type=file_type)
    except DocumentError as exc:
        raise DocumentError(str(exc), field="file") from exc
    markdown = file_name.lower().endswith((".md", ".markdown"))
    return {
        "name": file_name,
        **fields,
        "text": text,
        "content_type": "text/markdown" if markdown else "text/plain",
    }


@job_kind(DOCUMENTS_KIND, timeout=1800)
def document_job(job: Any, ctx: Any) -> dict[str, Any]:
    """POST /v1/documents as a job: read the stored content (a file, or JSON text), store it."""
    params = dict(job.params)
    if "upload_id" not in params:  # queued with its text inline, before contents were stored apart
        return ADD_DOCUMENT.describe(
            ADD_DOCUMENT.run(project=job.project, actor=job.actor, data=params)
        )
    upload = job_upload(job)
    if upload is None:
        raise JobFailed("the uploaded document is gone; upload it again")
    params.pop("upload_id")
    source = params.pop("file", None)
    try:
        if source is None:
            data = {**params, "text": bytes(upload.data).decode("utf-8")}
        else:
            data = document_from_file(params, bytes(upload.data), **source)
        document = ADD_DOCUMENT.run(project=job.project, actor=job.actor, data=data)
    except InvalidInput:
        upload.delete()  # refused for good; a dependency's failure keeps it for the retry
        raise
    upload.delete()
    return ADD_DOCUMENT.describe(document)


def learn_many(*, project: Project, actor: Any, data: Any) -> list[LearnResult]:
    """Learn a batch on the bulk path: one result per item, in order (skip: dedup as learn)."""
    params = validate_input(inputs.LearnManySerializer, data)
    items = [
        LearnItem(
            task=item["task"],
            code=item["code"],
            output=item.get("output") or "",
            external_id=item.get("external_id") or None,
            run_id=item.get("run_id") or "",
            created_at=item.get("created_at"),
            eval_score=item.get("eval_score"),
            metadata=item.get("metadata") or {},
        )
        for item in params["items"]
    ]
    result = learn_patterns_bulk(
        project=project,
        items=items,
        actor=actor,
        source=params["source"],
        evaluator=EvaluatorKind.API,
        dedup=params["on_duplicate"] == OnDuplicate.SKIP,
    )
    return result.results


def recall(*, project: Project, data: Any) -> RecallResult:
    """The project's most useful patterns for the task in data (read-only; counted in memory)."""
    result = recall_patterns(project=project, **validate_input(inputs.RecallSerializer, data))
    count_recall(project.pk)
    return result


def credit_outcome(*, project: Project, actor: Any, data: Any) -> int:
    """Credit the patterns a run recalled with its score; returns how many were credited."""
    return record_outcome(
        project=project, actor=actor, **validate_input(inputs.OutcomeSerializer, data)
    )


def delete_pattern(*, project: Project, actor: Any, data: Any) -> None:
    """Delete one of the project's patterns (NotFound when it has none of that id)."""
    pattern_id = validate_input(inputs.PatternRefSerializer, data)["pattern_id"]
    pattern = Pattern.objects.for_project(project).filter(pk=pattern_id).first()
    if pattern is None:
        raise NotFound(f"Pattern {pattern_id} does not exist in {project.path}.")
    remove_pattern(pattern=pattern, actor=actor)


def archive_pattern(*, project: Project, actor: Any, data: Any) -> Pattern:
    """Archive one of the project's patterns: recall no longer returns it (kept for audit)."""
    pattern_id = validate_input(inputs.PatternRefSerializer, data)["pattern_id"]
    pattern = Pattern.objects.for_project(project).filter(pk=pattern_id).first()
    if pattern is None:
        raise NotFound(f"Pattern {pattern_id} does not exist in {project.path}.")
    return update_pattern(pattern=pattern, changes={"archived": True}, actor=actor)


@dataclass(frozen=True)
class PatternPage:
    """Some of the project's patterns, newest first, and whether more follow."""

    patterns: list[Pattern]
    has_more: bool


def list_patterns(*, project: Project, data: Any) -> PatternPage:
    """A filtered page of the project's patterns, newest first (read-only)."""
    params = validate_input(inputs.PatternListSerializer, data)
    queryset = cast(PatternQuerySet, Pattern.objects.for_project(project)).defer("embedding")
    if params["archived"] == "false":
        queryset = queryset.live()
    elif params["archived"] == "true":
        queryset = queryset.filter(archived=True)
    if params.get("q"):
        queryset = queryset.filter(task__icontains=params["q"])
    for name in ("source", "run_id"):
        if params.get(name):
            queryset = queryset.filter(**{name: params[name]})
    if params.get("min_eval") is not None:
        queryset = queryset.filter(eval_score__gte=params["min_eval"])
    start, limit = params["offset"], params["limit"]
    # One row past the page says whether another page follows, without counting them all.
    rows = list(queryset.order_by("-created_at", "-id")[start : start + limit + 1])
    return PatternPage(patterns=rows[:limit], has_more=len(rows) > limit)


def feedback(*, project: Project, data: Any) -> list[dict[str, Any]]:
    """Recurring evaluator feedback of the project, most frequent first."""
    return feedback_summary(project, **validate_input(inputs.FeedbackQuerySerializer, data))


__all__ = [
    "ADD_DOCUMENT",
    "AGING",
    "EVALUATE",
    "LEARN",
    "EvaluateOutcome",
    "LearnOutcome",
    "PatternPage",
    "archive_pattern",
    "credit_outcome",
    "delete_pattern",
    "document_from_file",
    "feedback",
    "learn_many",
    "list_patterns",
    "recall",
]
