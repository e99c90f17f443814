"""Memory endpoints: thin views that parse, call one service and shape the response."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from engramia_site.api_errors import ServiceUnavailable
from jobs.api.async_support import run_or_accept
from memory.api.operations import (
    Result,
    aging_operation,
    evaluate_operation,
    learn_operation,
)
from memory.api.serializers import (
    EvaluateSerializer,
    EvaluationCreateSerializer,
    LearnSerializer,
    OutcomeSerializer,
    PatternSerializer,
    PatternUpdateSerializer,
    RecallSerializer,
)
from memory.models import Pattern
from memory.providers.embeddings import EmbeddingError
from memory.services import (
    add_evaluation,
    delete_pattern,
    feedback_summary,
    project_metrics,
    recall_patterns,
    record_outcome,
    update_pattern,
)
from memory.services.recall import Match
from tenants.api.base import ScopedAPIView, ScopedViewSet
from tenants.choices import Role


def _respond(result: Result) -> Response:
    status_code, body = result
    return Response(body, status=status_code)


class AsyncOperationView(ScopedAPIView):
    """A ⧗ endpoint: validates, then runs now or, with `Prefer: respond-async`, as a job."""

    kind: str
    operation: Callable[[Any, Any, Any], Result]
    serializer_class: type | None = None

    def payload(self, request: Request) -> Any:
        return request.data

    def post(self, request: Request) -> Response:
        data = self.payload(request)
        if self.serializer_class is not None:  # bad input is a 400 now, not a failed job later
            self.serializer_class(data=data).is_valid(raise_exception=True)
        operation = type(self).operation
        return run_or_accept(
            request,
            project=self.project,
            kind=self.kind,
            params=data if isinstance(data, dict) else {},
            run_sync=lambda: _respond(operation(self.project, request.user, data)),
        )


class LearnView(AsyncOperationView):
    """POST /v1/learn ⧗."""

    kind = "learn"
    operation = staticmethod(learn_operation)
    serializer_class = LearnSerializer
    required_roles = {"POST": Role.EDITOR}

    @extend_schema(request=LearnSerializer, responses={201: dict, 200: dict, 202: dict})
    def post(self, request: Request) -> Response:
        return super().post(request)


class EvaluateView(AsyncOperationView):
    """POST /v1/evaluate ⧗."""

    kind = "evaluate"
    operation = staticmethod(evaluate_operation)
    serializer_class = EvaluateSerializer
    required_roles = {"POST": Role.EDITOR}

    @extend_schema(request=EvaluateSerializer, responses={200: dict, 202: dict, 503: dict})
    def post(self, request: Request) -> Response:
        return super().post(request)


class AgingView(AsyncOperationView):
    """POST /v1/aging ⧗."""

    kind = "aging"
    operation = staticmethod(aging_operation)
    required_roles = {"POST": Role.EDITOR}

    def payload(self, request: Request) -> Any:
        if request.data:  # an empty JSON object, or no body at all
            raise exceptions.ValidationError({"non_field_errors": ["Aging takes no parameters."]})
        return {}

    @extend_schema(request=None, responses={200: dict, 202: dict})
    def post(self, request: Request) -> Response:
        return super().post(request)


# Every field of a Match but explain, which appears only when asked for.
_MATCH_FIELDS = tuple(field.name for field in dataclasses.fields(Match) if field.name != "explain")


def _match_body(match: Match) -> dict[str, Any]:
    """A recall match as JSON (the renderer writes datetimes as ISO 8601, UTC as Z)."""
    body = {name: getattr(match, name) for name in _MATCH_FIELDS}
    if match.explain is not None:
        body["explain"] = match.explain
    return body


class RecallView(ScopedAPIView):
    """POST /v1/recall: read-only."""

    required_roles = {"POST": Role.READER}

    @extend_schema(request=RecallSerializer, responses={200: dict})
    def post(self, request: Request) -> Response:
        serializer = RecallSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            result = recall_patterns(project=self.project, **serializer.validated_data)
        except EmbeddingError as exc:
            raise ServiceUnavailable(f"The embedding provider failed: {exc}") from exc
        body: dict[str, Any] = {"matches": [_match_body(match) for match in result.matches]}
        if serializer.validated_data["include_documents"]:
            body["documents"] = [vars(match) for match in result.documents]
        return Response(body)


class PatternViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """Curation: list, show, edit, archive, delete, evaluate patterns."""

    serializer_class = PatternSerializer
    queryset = Pattern.objects.defer("embedding").select_related("project")
    required_roles = {
        "list": Role.READER,
        "retrieve": Role.READER,
        "partial_update": Role.ADMIN,
        "destroy": Role.ADMIN,
        "evaluations": Role.EDITOR,
    }

    def get_queryset(self) -> QuerySet[Pattern]:
        queryset = super().get_queryset()
        if self.action != "list":
            return queryset
        params = self.request.query_params
        errors: dict[str, list[str]] = {}
        archived = params.get("archived", "false").lower()
        if archived in ("false", "0"):
            queryset = queryset.filter(archived=False)
        elif archived in ("true", "1"):
            queryset = queryset.filter(archived=True)
        elif archived != "all":
            errors["archived"] = ["Use true, false or all."]
        if source := params.get("source"):
            queryset = queryset.filter(source=source)
        if run_id := params.get("run_id"):
            queryset = queryset.filter(run_id=run_id)
        if q := params.get("q"):
            queryset = queryset.filter(task__icontains=q)
        if (min_eval := params.get("min_eval")) is not None:
            try:
                queryset = queryset.filter(eval_score__gte=float(min_eval))
            except ValueError:
                errors["min_eval"] = ["A number from 0 to 10."]
        if errors:
            raise exceptions.ValidationError(errors)
        return queryset.order_by("-created_at", "-id")

    @extend_schema(request=PatternUpdateSerializer, responses=PatternSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        serializer = PatternUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        pattern = update_pattern(
            pattern=self.get_object(), changes=serializer.validated_data, actor=request.user
        )
        return Response(PatternSerializer(pattern).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        delete_pattern(pattern=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=EvaluationCreateSerializer, responses={201: dict})
    @action(detail=True, methods=["post"])
    def evaluations(self, request: Request, pk: str | None = None) -> Response:
        serializer = EvaluationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        pattern = self.get_object()
        evaluation = add_evaluation(
            pattern=pattern, actor=request.user, **serializer.validated_data
        )
        pattern.refresh_from_db(fields=["eval_score", "eval_count"])
        return Response(
            {
                "id": evaluation.pk,
                "pattern_id": pattern.pk,
                "score": evaluation.score,
                "feedback": evaluation.feedback,
                "evaluator": evaluation.evaluator,
                "created_at": evaluation.created_at,
                "pattern_eval_score": pattern.eval_score,
            },
            status=status.HTTP_201_CREATED,
        )


class OutcomeView(ScopedAPIView):
    """POST /v1/outcomes: the SDK credits the patterns a run recalled with its score."""

    required_roles = {"POST": Role.EDITOR}

    @extend_schema(request=OutcomeSerializer, responses={200: dict})
    def post(self, request: Request) -> Response:
        serializer = OutcomeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        credited = record_outcome(
            project=self.project, actor=request.user, **serializer.validated_data
        )
        return Response({"credited": credited})


class FeedbackView(ScopedAPIView):
    """GET /v1/feedback: recurring evaluator feedback, most frequent first."""

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        try:
            limit = int(request.query_params.get("limit", 20))
        except ValueError:
            raise exceptions.ValidationError({"limit": ["An integer from 1 to 100."]}) from None
        if not 1 <= limit <= 100:
            raise exceptions.ValidationError({"limit": ["An integer from 1 to 100."]})
        return Response({"feedback": feedback_summary(self.project, limit=limit)})


class MetricsView(ScopedAPIView):
    """GET /v1/metrics."""

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        return Response(project_metrics(self.project))
