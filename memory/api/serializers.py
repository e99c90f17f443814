"""Shapes of the memory API's responses (input validation lives in memory.inputs)."""

from __future__ import annotations

from rest_framework import serializers

from memory.models import Pattern


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
