"""One partial HNSW index per embedding model (cosine), on the cast expression of the vector.

The embedding column holds vectors of several sizes; a partial expression index per model keeps
each index homogeneous. Recall orders by `embedding::vector(N) <=> q` to use it.
"""

from django.db import migrations

MODELS = {
    "hash_384": ("hash:384", 384),
    "minilm_384": ("local:all-MiniLM-L6-v2", 384),
    "openai_1536": ("openai:text-embedding-3-small", 1536),
}


def _create(table: str, prefix: str) -> list[migrations.RunSQL]:
    return [
        migrations.RunSQL(
            f"CREATE INDEX IF NOT EXISTS {prefix}_hnsw_{suffix} ON {table} "
            f"USING hnsw ((embedding::vector({dims})) vector_cosine_ops) "
            f"WITH (m = 16, ef_construction = 64) WHERE embedding_model = '{name}'",
            f"DROP INDEX IF EXISTS {prefix}_hnsw_{suffix}",
        )
        for suffix, (name, dims) in MODELS.items()
    ]


class Migration(migrations.Migration):
    dependencies = [("memory", "0001_initial")]

    operations = [*_create("memory_pattern", "pattern"), *_create("memory_chunk", "chunk")]
