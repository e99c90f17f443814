"""Shape of a job in the API (read-only)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs.choices import JobStatus
from jobs.models import Job


class ProgressSerializer(serializers.Serializer):
    """{"done", "total"}; total is null until the job knows it."""

    done = serializers.IntegerField()
    total = serializers.IntegerField(allow_null=True)


class JobSerializer(serializers.ModelSerializer):
    """{"id","kind","status","progress":{"done","total"},"result","error","attempts",...}."""

    progress = serializers.SerializerMethodField()
    result = serializers.JSONField(read_only=True)
    error = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "status",
            "progress",
            "result",
            "error",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, job: Job) -> dict[str, Any]:
        return {"done": job.progress_done, "total": job.progress_total}

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_error(self, job: Job) -> str | None:
        return job.error or None


class JobAcceptedSerializer(serializers.Serializer):
    """202 to `Prefer: respond-async`: the job to poll (also in the `Location` header)."""

    job_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=JobStatus.choices)
    url = serializers.CharField()
