"""Patterns, their evaluations, and documents split into embedded chunks."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from pgvector.django import VectorField

from engramia_site.json_field import DepthSafeJSONField
from memory.querysets import PatternQuerySet
from tenants.models import Project
from tenants.querysets import ProjectScopedQuerySet


class Pattern(models.Model):
    """What an agent did: a task, its solution, the output, and how good it was."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="patterns")
    task = models.TextField()
    code = models.TextField()
    output = models.TextField(blank=True, default="")
    source = models.CharField(max_length=64, default="api")
    run_id = models.CharField(max_length=255, blank=True, default="")
    external_id = models.CharField(max_length=255, null=True, blank=True)
    metadata = DepthSafeJSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, help_text="original time")
    learned_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    archived = models.BooleanField(default=False)
    task_hash = models.CharField(max_length=64, help_text="sha256 of the normalized task")
    embedding = VectorField(dimensions=None, null=True, blank=True)
    embedding_model = models.CharField(max_length=100)
    eval_score = models.FloatField(null=True, blank=True, help_text="median of recent evaluations")
    eval_count = models.PositiveIntegerField(default=0)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    decayed_eval_score = models.FloatField(null=True, blank=True, help_text="set by aging")

    objects = PatternQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"],
                condition=Q(external_id__isnull=False),
                name="pattern_external_id_unique_in_project",
            )
        ]
        indexes = [
            models.Index(fields=["project", "embedding_model", "archived"], name="pattern_scope"),
            models.Index(fields=["project", "task_hash"], name="pattern_task_hash"),
            models.Index(fields=["project", "-created_at"], name="pattern_recent"),
            models.Index(fields=["project", "run_id"], name="pattern_run"),
            # The dashboard's counts (live, archived, unrated, learned per day, score bands)
            # read this index only, not the wide rows.
            models.Index(
                fields=["project", "archived", "learned_at", "eval_score"], name="pattern_stats"
            ),
        ]

    def __str__(self) -> str:
        return self.task[:80]

    def get_additional_data(self) -> dict[str, Any]:
        return {"tenant_id": self.project.tenant_id, "project_id": self.project_id}


class ScopeSize(models.Model):
    """How many live patterns a project holds of one embedding model, kept by the database.

    Triggers on the pattern table (migration 0008) add and subtract in the transaction of every
    insert, delete, archive, unarchive and model change, COPY and cascades included, so recall
    reads a scope's size in one index lookup instead of counting its rows.
    """

    project = models.ForeignKey(
        Project, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    embedding_model = models.CharField(max_length=100)
    live_rows = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "embedding_model"], name="scope_size_one_per_model"
            )
        ]

    def __str__(self) -> str:
        return f"{self.project_id} {self.embedding_model}: {self.live_rows}"


class Evaluation(models.Model):
    """One judgement of a pattern: a 0-10 score with feedback, from a human, a judge or a run."""

    pattern = models.ForeignKey(Pattern, on_delete=models.CASCADE, related_name="evaluations")
    score = models.FloatField()
    feedback = models.TextField(blank=True, default="")
    feedback_key = models.CharField(max_length=255, blank=True, default="", db_index=True)
    evaluator = models.CharField(max_length=120)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["pattern", "-created_at"], name="evaluation_recent")]
        constraints = [
            models.CheckConstraint(
                condition=Q(score__gte=0) & Q(score__lte=10), name="evaluation_score_0_10"
            )
        ]

    def __str__(self) -> str:
        return f"{self.score:g} by {self.evaluator}"

    def get_additional_data(self) -> dict[str, Any]:
        project = self.pattern.project
        return {"tenant_id": project.tenant_id, "project_id": project.pk}


class Document(models.Model):
    """An uploaded text (the replacement for assistant files), searchable by its chunks."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="documents")
    name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100, default="text/plain")
    size = models.PositiveIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(default=0)
    external_id = models.CharField(max_length=255, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"],
                condition=Q(external_id__isnull=False),
                name="document_external_id_unique_in_project",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def get_additional_data(self) -> dict[str, Any]:
        return {"tenant_id": self.project.tenant_id, "project_id": self.project_id}


class Chunk(models.Model):
    """A piece of a document with its own embedding."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    index = models.PositiveIntegerField()
    text = models.TextField()
    embedding = VectorField(dimensions=None)
    embedding_model = models.CharField(max_length=100)

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["document_id", "index"]
        indexes = [models.Index(fields=["project", "embedding_model"], name="chunk_scope")]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.index}"


class StagedEmbedding(models.Model):
    """A vector made by a re-embedding job under the project's next model, not live until swapped.

    Recall keeps reading the rows' own vectors (the project's current model) while the job fills
    this table; one transaction then copies these into their rows and repoints the project.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, help_text="a kind registered in retrieval.registry")
    object_id = models.BigIntegerField()
    embedding_model = models.CharField(max_length=100)
    text_hash = models.CharField(max_length=64, help_text="sha256 of the text embedded")
    embedding = VectorField(dimensions=None)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "kind", "object_id"], name="staged_embedding_one_per_row"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id} under {self.embedding_model}"


class RecallStat(models.Model):
    """Recalls served in a project on a day (UTC), counted in-process and written in batches."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "day"], name="recall_stat_one_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.count} recalls in project {self.project_id} on {self.day}"
