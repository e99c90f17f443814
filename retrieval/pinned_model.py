"""Which embedder a project uses, and keeping vectors on the project's current model."""

from __future__ import annotations

from django.db import connection

from engramia_site.errors import InvalidInput
from retrieval.embeddings import Embedder, EmbeddingError, get_embedder
from tenants.models import Project

# pgvector stores at most 16,000 dimensions in a `vector` column.
MAX_EMBEDDING_DIMENSIONS = 16_000
MAX_MODEL_NAME_LENGTH = 100  # Project/Pattern/Chunk.embedding_model


class UnknownEmbeddingModel(InvalidInput):
    """A model name that no embedder answers to, or whose embedder is not configured here."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="embedding_model", code="unknown_model")


def embedder_for(project: Project) -> Embedder:
    """The embedder pinned by the project (its vectors all share this model)."""
    return get_embedder(project.embedding_model)


def embed_in_current_model(
    project: Project, texts: list[str], embedder: Embedder, vectors: list[list[float]]
) -> tuple[Embedder, list[list[float]]]:
    """Make vectors computed before this transaction fit the project's model as it is now.

    Call inside the transaction that stores them. It reads the project's model with a
    FOR KEY SHARE lock, so a re-embedding job's swap (which locks the row FOR UPDATE) either
    waits for this transaction and then finds its rows, or has committed already, in which case
    the texts are embedded again with the new model here. No row is left on the old model.
    """
    # The ORM has no FOR KEY SHARE; FOR UPDATE would serialise every learn in the project.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT embedding_model FROM {Project._meta.db_table} WHERE id = %s "  # noqa: S608
            "FOR KEY SHARE",
            [project.pk],
        )
        row = cursor.fetchone()
    model = row[0] if row else embedder.name
    if model == embedder.name:
        return embedder, vectors
    project.embedding_model = model
    embedder = get_embedder(model)
    return embedder, embedder.embed_documents(texts)


def resolve_embedding_model(name: str) -> str:
    """The stored name of the embedder called name, which must load here (keys, packages).

    Accepts every spelling ENGRAMIA_EMBEDDINGS and stored vectors use: `local`, `hash`,
    `hash:<dimensions>`, `openai`, `openai:<model>`, `local:all-MiniLM-L6-v2`.
    """
    if not name or not name.strip():
        raise UnknownEmbeddingModel("name an embedding model, e.g. 'local' or 'hash:384'")
    try:
        embedder = get_embedder(name.strip())
    except EmbeddingError as exc:
        raise UnknownEmbeddingModel(str(exc)) from exc
    if embedder.dimensions > MAX_EMBEDDING_DIMENSIONS:
        raise UnknownEmbeddingModel(
            f"{embedder.name} makes {embedder.dimensions}-d vectors; pgvector stores at most "
            f"{MAX_EMBEDDING_DIMENSIONS}"
        )
    if len(embedder.name) > MAX_MODEL_NAME_LENGTH:
        raise UnknownEmbeddingModel(
            f"embedding model names are at most {MAX_MODEL_NAME_LENGTH} characters"
        )
    return embedder.name


__all__ = [
    "MAX_EMBEDDING_DIMENSIONS",
    "UnknownEmbeddingModel",
    "embed_in_current_model",
    "embedder_for",
    "resolve_embedding_model",
]
