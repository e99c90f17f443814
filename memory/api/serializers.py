"""Shapes of the memory API's responses (input validation lives in memory.inputs)."""

from __future__ import annotations

from rest_framework import serializers

from memory.models import Document, Pattern


class PatternSerializer(serializers.ModelSerializer):
    """A stored pattern as listed and shown."""

    pattern_id = serializers.IntegerField(source="pk", read_only=True)

    class Meta:
        model = Pattern
        fields = [
            "id",
            "pattern_id",
            "task",
            "code",
            "output",
            "source",
            "run_id",
            "external_id",
            "metadata",
            "eval_score",
            "eval_count",
            "created_at",
            "learned_at",
            "archived",
            "embedding_model",
        ]
        read_only_fields = fields


class DocumentSerializer(serializers.ModelSerializer):
    """A stored document as listed (its text is in its chunks, never in the list)."""

    class Meta:
        model = Document
        fields = ["id", "name", "content_type", "size", "chunk_count", "created_at"]
        read_only_fields = fields


# The shapes below document answers built by memory.operations; they validate nothing.


class LearnResultSerializer(serializers.Serializer):
    """POST /v1/learn: `pattern_count` when a new pattern was stored, `replaced` when it replaced a
    worse duplicate."""

    pattern_id = serializers.IntegerField()
    stored = serializers.BooleanField()
    duplicate_of = serializers.IntegerField(allow_null=True)
    replaced = serializers.BooleanField(required=False)
    pattern_count = serializers.IntegerField(required=False)


class RecallMatchSerializer(serializers.Serializer):
    """One recalled pattern; `explain` only when asked for."""

    pattern_id = serializers.IntegerField()
    task = serializers.CharField()
    code = serializers.CharField()
    output = serializers.CharField(allow_blank=True)
    similarity = serializers.FloatField()
    eval_score = serializers.FloatField(allow_null=True)
    score = serializers.FloatField()
    reuse_tier = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]
    run_id = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    explain = serializers.DictField(required=False)


class DocumentMatchSerializer(serializers.Serializer):
    """A document chunk that matches the task."""

    document_id = serializers.IntegerField()
    name = serializers.CharField()
    chunk_index = serializers.IntegerField()
    text = serializers.CharField()
    similarity = serializers.FloatField()


class RecallResultSerializer(serializers.Serializer):
    """POST /v1/recall: `documents` only with `include_documents`."""

    matches = RecallMatchSerializer(many=True)
    documents = DocumentMatchSerializer(many=True, required=False)


class EvaluationResultSerializer(serializers.Serializer):
    """POST /v1/evaluate: the judge's verdict (recorded on `pattern_id` when one was named)."""

    median_score = serializers.FloatField()
    scores = serializers.ListField(child=serializers.FloatField())
    spread = serializers.FloatField()
    feedback = serializers.CharField(allow_blank=True)
    evaluator = serializers.CharField()
    pattern_id = serializers.IntegerField(allow_null=True)


class AgingResultSerializer(serializers.Serializer):
    """POST /v1/aging."""

    decayed = serializers.IntegerField()
    archived = serializers.IntegerField()


class OutcomeResultSerializer(serializers.Serializer):
    """POST /v1/outcomes: how many of the named patterns were credited."""

    credited = serializers.IntegerField()


class FeedbackItemSerializer(serializers.Serializer):
    """One recurring piece of evaluator feedback."""

    feedback = serializers.CharField()
    count = serializers.IntegerField()
    last_seen = serializers.DateTimeField()


class FeedbackSerializer(serializers.Serializer):
    """GET /v1/feedback."""

    feedback = FeedbackItemSerializer(many=True)


class MetricsSerializer(serializers.Serializer):
    """GET /v1/metrics."""

    pattern_count = serializers.IntegerField()
    archived_count = serializers.IntegerField()
    evaluated_count = serializers.IntegerField()
    avg_eval_score = serializers.FloatField(allow_null=True)
    document_count = serializers.IntegerField()
    by_source = serializers.DictField(child=serializers.IntegerField())
    embedding_model = serializers.CharField()


class PatternEvaluationSerializer(serializers.Serializer):
    """POST /v1/patterns/<id>/evaluations: the evaluation and the pattern's new score."""

    id = serializers.IntegerField()
    pattern_id = serializers.IntegerField()
    score = serializers.FloatField()
    feedback = serializers.CharField(allow_blank=True)
    evaluator = serializers.CharField()
    created_at = serializers.DateTimeField()
    pattern_eval_score = serializers.FloatField(allow_null=True)
