"""The staging table of re-embedding jobs (see memory.services.reembedding)."""

import django.db.models.deletion
import django.utils.timezone
import pgvector.django.vector
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("memory", "0004_vector_storage_main"),
        ("tenants", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="StagedEmbedding",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("pattern", "Pattern"),
                            ("chunk", "Document chunk"),
                            ("skill", "Skill"),
                        ],
                        max_length=16,
                    ),
                ),
                ("object_id", models.BigIntegerField()),
                ("embedding_model", models.CharField(max_length=100)),
                (
                    "text_hash",
                    models.CharField(help_text="sha256 of the text embedded", max_length=64),
                ),
                ("embedding", pgvector.django.vector.VectorField()),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "project",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenants.project",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("project", "kind", "object_id"),
                        name="staged_embedding_one_per_row",
                    )
                ],
            },
        ),
    ]
