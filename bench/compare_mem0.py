"""mem0's side of bench/compare.py; runs in mem0's own virtualenv (never Engramia's).

Reads a JSON spec on stdin (database URI, workload files, how many items are preloaded),
then: builds `mem0.Memory` on pgvector with Engramia's hash embedder in place of its embedding
model and an LLM that is never called (infer=False); bulk-loads the preloaded items with COPY
(indexes dropped and rebuilt, as Engramia's side does); learns the rest one at a time with
`Memory.add(task, user_id=<project>, infer=False)`; times `Memory.search(top_k=10)` per query.
Prints one JSON document on stdout; progress goes to stderr.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_bench.common import (
    LIMIT,
    NetworkGuard,
    hash_embedder,
    ms_since,
    summarise_learn,
    summarise_recall,
)

guard = NetworkGuard()
guard.install()  # before mem0 is imported: it would phone home on import or first call


def say(message: str) -> None:
    """Progress on stderr (stdout carries the JSON)."""
    print(f"  [mem0] {message}", file=sys.stderr, flush=True)


def build_memory(spec: dict[str, Any]) -> Any:
    """mem0's Memory on pgvector, its embedding model replaced by Engramia's hash embedder."""
    from mem0 import Memory
    from mem0.configs.embeddings.base import BaseEmbedderConfig
    from mem0.embeddings.base import EmbeddingBase

    dims = spec["dimensions"]
    # A port nothing listens on: an LLM or embedding call would fail at once, loudly.
    nowhere = "http://127.0.0.1:9/v1"
    memory = Memory.from_config(
        {
            "vector_store": {
                "provider": "pgvector",
                "config": {
                    "connection_string": spec["database_uri"],
                    "collection_name": spec["collection"],
                    "embedding_model_dims": dims,
                    "hnsw": True,
                },
            },
            "embedder": {
                "provider": "openai",
                "config": {"api_key": "unused", "openai_base_url": nowhere, "embedding_dims": dims},
            },
            "llm": {
                "provider": "openai",
                "config": {"api_key": "unused", "openai_base_url": nowhere},
            },
            "history_db_path": str(Path(spec["mem0_home"]) / "history.db"),
        }
    )
    hasher = hash_embedder(dims, Path(spec["root"]))

    class HashEmbedding(EmbeddingBase):
        """Engramia's hash embedder behind mem0's embedding interface."""

        def embed(self, text: Any, memory_action: Any = None) -> list[float]:
            if memory_action == "search":
                return list(hasher.embed_query(text))
            return list(hasher.embed_documents([text])[0])

    memory.embedding_model = HashEmbedding(BaseEmbedderConfig(embedding_dims=dims))
    return memory


def reset(memory: Any) -> None:
    """A fresh collection and history for this run."""
    memory.vector_store.delete_col()
    memory.vector_store._collection_ensured = False
    memory.vector_store._ensure_collection()
    with memory.db._lock:
        memory.db.connection.execute("DELETE FROM history")
        memory.db.connection.commit()


def payload(project: str, task: str, code: str, now: str) -> dict[str, Any]:
    """The payload Memory.add(infer=False) stores for a user message (_create_memory)."""
    from mem0.utils.lemmatization import lemmatize_for_bm25

    return {
        "user_id": project,
        "code": code,
        "role": "user",
        "data": task,
        "hash": hashlib.md5(task.encode()).hexdigest(),
        "created_at": now,
        "updated_at": now,
        "text_lemmatized": lemmatize_for_bm25(task),
    }


def preload(memory: Any, spec: dict[str, Any], items: list[Any], vectors: Any) -> dict[str, Any]:
    """COPY the preloaded items (mem0's indexes dropped, then rebuilt), and their history."""
    import psycopg

    count = spec["preload"]
    table = spec["collection"]
    timings: dict[str, Any] = {}
    with psycopg.connect(spec["database_uri"], autocommit=True) as conn:
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s "
            "AND indexname NOT LIKE '%%_pkey'",
            (table,),
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        vector_format = "[" + ",".join(["%.6g"] * vectors.shape[1]) + "]"
        now = datetime.now(UTC).isoformat()
        history = []
        started = time.perf_counter()
        with (
            conn.cursor() as cursor,
            cursor.copy(f'COPY "{table}" (id, vector, payload) FROM STDIN') as copy,
        ):
            for (project, task, code), vector in zip(items[:count], vectors[:count], strict=True):
                memory_id = str(uuid.uuid4())
                body = payload(project, task, code, now)
                copy.write_row(
                    (memory_id, vector_format % tuple(vector.tolist()), json.dumps(body))
                )
                history.append((str(uuid.uuid4()), memory_id, None, task, "ADD", now, now, 0))
        timings["copy_s"] = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '1GB'")
        for _, definition in indexes:
            conn.execute(definition)
        conn.execute("RESET maintenance_work_mem")
        timings["index_s"] = time.perf_counter() - started
        conn.execute(f'VACUUM ANALYZE "{table}"')
    with memory.db._lock:
        memory.db.connection.executemany(
            "INSERT INTO history (id, memory_id, old_memory, new_memory, event, created_at, "
            "updated_at, is_deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            history,
        )
        memory.db.connection.commit()
    timings["indexes"] = [definition for _, definition in indexes]
    say(f"preloaded {count}: COPY {timings['copy_s']:.1f} s, indexes {timings['index_s']:.1f} s")
    return timings


def learn(memory: Any, items: list[Any], start: int) -> dict[str, Any]:
    """Memory.add(task, user_id=project, infer=False) for each timed item, one at a time."""
    latencies = []
    started = time.perf_counter()
    for project, task, code in items[start:]:
        begin = time.perf_counter()
        memory.add(task, user_id=project, infer=False, metadata={"code": code})
        latencies.append(ms_since(begin))
    seconds = time.perf_counter() - started
    say(f"learned {len(latencies)} items in {seconds:.1f} s")
    return {**summarise_learn(latencies, seconds), "learned": len(latencies)}


def recall(memory: Any, queries: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Memory.search(top_k=10) per query (timed), then the vector store's own top 10."""
    for project, text in queries["warmup"]:
        memory.search(text, top_k=LIMIT, filters={"user_id": project})
    latencies, found = [], []
    for project, text in queries["queries"]:
        begin = time.perf_counter()
        results = memory.search(text, top_k=LIMIT, filters={"user_id": project})["results"]
        latencies.append(ms_since(begin))
        found.append([row["memory"] for row in results])
    # Not timed: the pgvector stage alone, before mem0's BM25 blend and threshold.
    vector_stage = []
    for project, text in queries["queries"]:
        rows = memory.vector_store.search(
            query=text,
            vectors=memory.embedding_model.embed(text, "search"),
            top_k=LIMIT,
            filters={"user_id": project},
        )
        vector_stage.append([row.payload["data"] for row in rows])
    return summarise_recall(latencies), {"found": found, "vector_stage_found": vector_stage}


def describe(spec: dict[str, Any]) -> dict[str, Any]:
    """Versions and the collection's size, for the conditions."""
    from importlib.metadata import version

    import psycopg

    with psycopg.connect(spec["database_uri"]) as conn:
        size, rows, ef = conn.execute(
            "SELECT pg_total_relation_size(%s::regclass), (SELECT count(*) FROM "
            f"\"{spec['collection']}\"), current_setting('hnsw.ef_search', true)",
            (spec["collection"],),
        ).fetchone()
    try:
        version("spacy")
        spacy = True
    except Exception:
        spacy = False
    return {
        "mem0_version": version("mem0ai"),
        "psycopg": version("psycopg"),
        "python": sys.version.split()[0],
        "spacy_installed": spacy,
        "table_bytes": size,
        "rows": rows,
        "hnsw_ef_search": ef or "40 (pgvector default)",
        "telemetry": os.environ.get("MEM0_TELEMETRY"),
    }


def main() -> None:
    """Run the spec on stdin and print the results."""
    import numpy as np

    spec = json.loads(sys.stdin.read())
    items = json.loads(Path(spec["files"]["items"]).read_text())
    vectors = np.load(spec["files"]["vectors"])
    queries = json.loads(Path(spec["files"]["queries"]).read_text())
    memory = build_memory(spec)
    reset(memory)
    result: dict[str, Any] = {"preload": {}}
    if spec["preload"]:
        result["preload"] = preload(memory, spec, items, vectors)
    result["learn"] = learn(memory, items, spec["preload"])
    import psycopg

    with psycopg.connect(spec["database_uri"], autocommit=True) as conn:
        conn.execute(f'ANALYZE "{spec["collection"]}"')
    result["recall"], result["found"] = recall(memory, queries)
    result["about"] = describe(spec)
    result["network_attempts"] = guard.attempts
    memory.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
