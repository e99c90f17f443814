"""Memory endpoints: thin views that parse, call one service and shape the response."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from jobs.api.async_support import PREFER_PARAMETER, respond
from jobs.api.serializers import JobAcceptedSerializer as JobAccepted
from jobs.operations import Operation, validate_input
from memory import operations
from memory.api.serializers import (
    AgingResultSerializer,
    EvaluationResultSerializer,
    FeedbackSerializer,
    LearnResultSerializer,
    MetricsSerializer,
    OutcomeResultSerializer,
    PatternEvaluationSerializer,
    PatternSerializer,
    RecallResultSerializer,
)
from memory.inputs import (
    EvaluateSerializer,
    EvaluationCreateSerializer,
    FeedbackQuerySerializer,
    LearnSerializer,
    OutcomeSerializer,
    PatternUpdateSerializer,
    RecallSerializer,
)
from memory.models import Pattern
from memory.querysets import PatternQuerySet
from memory.services import (
    add_evaluation,
    delete_pattern,
    project_metrics,
    update_pattern,
)
from memory.services.recall import Match
from tenants.api.base import ScopedAPIView, ScopedViewSet
from tenants.choices import Role


class OperationView(ScopedAPIView):
    """A ⧗ endpoint: one operation, performed now or, with `Prefer: respond-async`, as a job."""

    operation: Operation[Any]

    def post(self, request: Request) -> Response:
        return respond(request, self.operation, project=self.project, data=request.data)


class LearnView(OperationView):
    """POST /v1/learn ⧗."""

    operation = operations.LEARN
    required_roles = {"POST": Role.EDITOR}

    @extend_schema(
        request=LearnSerializer,
        parameters=[PREFER_PARAMETER],
        responses={201: LearnResultSerializer, 200: LearnResultSerializer, 202: JobAccepted},
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


class EvaluateView(OperationView):
    """POST /v1/evaluate ⧗."""

    operation = operations.EVALUATE
    required_roles = {"POST": Role.EDITOR}

    @extend_schema(
        request=EvaluateSerializer,
        parameters=[PREFER_PARAMETER],
        responses={200: EvaluationResultSerializer, 202: JobAccepted},
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


class AgingView(OperationView):
    """POST /v1/aging ⧗."""

    operation = operations.AGING
    required_roles = {"POST": Role.EDITOR}

    @extend_schema(
        request=None,
        parameters=[PREFER_PARAMETER],
        responses={200: AgingResultSerializer, 202: JobAccepted},
    )
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

    @extend_schema(request=RecallSerializer, responses=RecallResultSerializer)
    def post(self, request: Request) -> Response:
        result = operations.recall(project=self.project, data=request.data)
        body: dict[str, Any] = {"matches": [_match_body(match) for match in result.matches]}
        if result.documents_searched:
            body["documents"] = [vars(match) for match in result.documents]
        return Response(body)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter(
                "archived", str, enum=["false", "true", "all", "0", "1"], default="false"
            ),
            OpenApiParameter("source", str, description="Only patterns from this source."),
            OpenApiParameter("run_id", str, description="Only patterns of this run."),
            OpenApiParameter("q", str, description="Text the task contains (case-insensitive)."),
            OpenApiParameter("min_eval", float, description="Only patterns scored at least this."),
        ]
    )
)
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
        queryset = cast(PatternQuerySet, super().get_queryset())
        if self.action != "list":
            return queryset
        params = self.request.query_params
        errors: dict[str, list[str]] = {}
        archived = (params.get("archived") or "false").lower()
        if archived in ("false", "0"):
            queryset = queryset.live()
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
        if min_eval := params.get("min_eval"):
            try:
                queryset = queryset.filter(eval_score__gte=float(min_eval))
            except ValueError:
                errors["min_eval"] = ["A number from 0 to 10."]
        if errors:
            raise exceptions.ValidationError(errors)
        return queryset.order_by("-created_at", "-id")

    @extend_schema(request=PatternUpdateSerializer, responses=PatternSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        changes = validate_input(PatternUpdateSerializer, request.data)
        pattern = update_pattern(pattern=self.get_object(), changes=changes, actor=request.user)
        return Response(PatternSerializer(pattern).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        delete_pattern(pattern=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=EvaluationCreateSerializer, responses={201: PatternEvaluationSerializer})
    @action(detail=True, methods=["post"])
    def evaluations(self, request: Request, pk: str | None = None) -> Response:
        params = validate_input(EvaluationCreateSerializer, request.data)
        pattern = self.get_object()
        evaluation = add_evaluation(pattern=pattern, actor=request.user, **params)
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

    @extend_schema(request=OutcomeSerializer, responses=OutcomeResultSerializer)
    def post(self, request: Request) -> Response:
        credited = operations.credit_outcome(
            project=self.project, actor=request.user, data=request.data
        )
        return Response({"credited": credited})


class FeedbackView(ScopedAPIView):
    """GET /v1/feedback: recurring evaluator feedback, most frequent first."""

    @extend_schema(parameters=[FeedbackQuerySerializer], responses=FeedbackSerializer)
    def get(self, request: Request) -> Response:
        items = operations.feedback(project=self.project, data=request.query_params)
        return Response({"feedback": items})


class MetricsView(ScopedAPIView):
    """GET /v1/metrics."""

    @extend_schema(responses=MetricsSerializer)
    def get(self, request: Request) -> Response:
        return Response(project_metrics(self.project))
