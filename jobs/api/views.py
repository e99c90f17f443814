"""GET /v1/jobs, GET /v1/jobs/<id>, POST /v1/jobs/<id>/cancel: scoped to the key's project."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from jobs.api.serializers import JobSerializer
from jobs.choices import JobStatus
from jobs.models import Job
from jobs.services import cancel_job
from tenants.api.base import ScopedViewSet
from tenants.api.schema import error_responses
from tenants.choices import Role


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=JobStatus.values),
            OpenApiParameter("kind", str, description="e.g. learn, documents, import."),
        ]
    )
)
class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """The project's jobs, newest first; cancel needs the editor role."""

    queryset = Job.objects.all()
    serializer_class = JobSerializer
    lookup_value_regex = r"[0-9]+"
    required_roles = {"list": Role.READER, "retrieve": Role.READER, "cancel": Role.EDITOR}

    def get_queryset(self) -> QuerySet[Job]:
        queryset = super().get_queryset()
        if self.action == "list":
            queryset = self._filter(queryset)
        return queryset.order_by("-created_at", "-id")

    def _filter(self, queryset: QuerySet[Job]) -> QuerySet[Job]:
        params = self.request.query_params
        if status_name := params.get("status"):
            if status_name not in JobStatus.values:
                raise exceptions.ValidationError(
                    {"status": [f"Use one of: {', '.join(JobStatus.values)}."]}
                )
            queryset = queryset.filter(status=status_name)
        if kind := params.get("kind"):
            queryset = queryset.filter(kind=kind)
        return queryset

    @extend_schema(request=None, responses={200: JobSerializer, **error_responses(409)})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel a pending job, or ask a running one to stop at its next checkpoint."""
        job = cancel_job(self.get_object(), actor=request.user)
        return Response(JobSerializer(job).data)
