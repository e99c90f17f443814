"""The slow memory operations, shared by the synchronous endpoints and their jobs.

Each takes the project, the acting user and the raw JSON payload, validates it with the same
serializer the endpoint uses, calls one service and returns (status, body).
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, status

from engramia_site.api_errors import ServiceUnavailable
from memory.api.serializers import DocumentCreateSerializer, EvaluateSerializer, LearnSerializer
from memory.models import Pattern
from memory.providers.embeddings import EmbeddingError
from memory.providers.llm import LLMError, LLMNotConfigured
from memory.services import add_document, evaluate_with_judge, learn_pattern, run_aging
from memory.services.documents import DocumentError, extract_text
from tenants.models import Project

Result = tuple[int, dict[str, Any]]


def _validated(serializer_class: type, data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def learn_operation(project: Project, actor: Any, data: Any) -> Result:
    """POST /v1/learn."""
    params = _validated(LearnSerializer, data)
    try:
        result = learn_pattern(project=project, actor=actor, **params)
    except EmbeddingError as exc:
        raise ServiceUnavailable(f"The embedding provider failed: {exc}") from exc
    body: dict[str, Any] = {
        "pattern_id": result.pattern_id,
        "stored": result.stored,
        "duplicate_of": result.duplicate_of,
    }
    if result.replaced:
        body["replaced"] = True
    if result.stored and not result.replaced:
        body["pattern_count"] = Pattern.objects.for_project(project).filter(archived=False).count()
        return status.HTTP_201_CREATED, body
    return status.HTTP_200_OK, body


def evaluate_operation(project: Project, actor: Any, data: Any) -> Result:
    """POST /v1/evaluate: the LLM judge, recorded on a pattern when one is named."""
    params = _validated(EvaluateSerializer, data)
    pattern = None
    if params.get("pattern_id") is not None:
        pattern = Pattern.objects.for_project(project).filter(pk=params["pattern_id"]).first()
        if pattern is None:
            raise exceptions.ValidationError({"pattern_id": ["No such pattern in this project."]})
    try:
        result = evaluate_with_judge(
            project=project,
            task=params["task"],
            code=params["code"],
            output=params.get("output"),
            num_evals=params["num_evals"],
            pattern=pattern,
            actor=actor,
        )
    except LLMNotConfigured as exc:
        raise ServiceUnavailable(f"No LLM judge is configured: {exc}") from exc
    except LLMError as exc:
        raise ServiceUnavailable(f"The LLM judge failed: {exc}") from exc
    return status.HTTP_200_OK, {
        "median_score": result.median_score,
        "scores": result.scores,
        "spread": result.spread,
        "feedback": result.feedback,
        "evaluator": result.evaluator,
        "pattern_id": pattern.pk if pattern else None,
    }


def aging_operation(project: Project, actor: Any, data: Any) -> Result:
    """POST /v1/aging (it takes no parameters; the view refuses any)."""
    return status.HTTP_200_OK, run_aging(project=project, actor=actor)


def document_from_upload(
    fields: dict[str, Any], data: bytes, *, file_name: str, file_type: str
) -> dict[str, Any]:
    """The JSON form of an uploaded file: its text read (PDFs under their bounds), or a 400."""
    try:
        text = extract_text(data, name=file_name, content_type=file_type)
    except DocumentError as exc:
        raise exceptions.ValidationError({"file": [str(exc)]}) from exc
    markdown = file_name.lower().endswith((".md", ".markdown"))
    return {
        "name": file_name,
        **fields,
        "text": text,
        "content_type": "text/markdown" if markdown else "text/plain",
    }


def document_operation(project: Project, actor: Any, data: Any) -> Result:
    """POST /v1/documents (JSON form; uploads are turned into it by document_from_upload)."""
    params = _validated(DocumentCreateSerializer, data)
    try:
        document = add_document(project=project, actor=actor, **params)
    except DocumentError as exc:
        raise exceptions.ValidationError({"text": [str(exc)]}) from exc
    except EmbeddingError as exc:
        raise ServiceUnavailable(f"The embedding provider failed: {exc}") from exc
    return status.HTTP_201_CREATED, {
        "id": document.pk,
        "name": document.name,
        "chunk_count": document.chunk_count,
        "size": document.size,
        "content_type": document.content_type,
        "created_at": document.created_at.isoformat(),
    }
