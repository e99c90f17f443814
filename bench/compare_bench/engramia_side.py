"""Engramia's side: the SDK in local mode (`engramia.Memory`, the services in this process)
and the REST API through a real gunicorn, on the same workload as mem0.

Construct only after Django is configured (bench/compare.py does it).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from recall_bench.api import ApiServer
from recall_bench.dataset import TENANT, Dataset
from recall_bench.report import Results
from recall_bench.sql import Database

from .common import LIMIT, ms_since, summarise_learn, summarise_recall
from .workload import Item, Query, Workload

KEY_NAME = "bench-compare-editor"


class StatementCounter:
    """Counts the SQL statements Django sends (per learn or recall, for the profile notes)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, ctx: Any):
        self.count += 1
        return execute(sql, params, many, ctx)


@contextmanager
def profiled(directory: Path | None, name: str) -> Iterator[None]:
    """cProfile the block into directory/name.prof and name.txt (top functions) when asked."""
    if directory is None:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        directory.mkdir(parents=True, exist_ok=True)
        profile.dump_stats(directory / f"{name}.prof")
        text = io.StringIO()
        stats = pstats.Stats(profile, stream=text)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(30)
        (directory / f"{name}.txt").write_text(text.getvalue())


class EngramiaSide:
    """The bench tenant's projects, loaded and learned through the SDK, recalled both ways."""

    def __init__(self, args: argparse.Namespace, workload: Workload, vectors: Any) -> None:
        from django.core.management import call_command

        from retrieval.embeddings import get_embedder

        call_command("migrate", interactive=False, verbosity=0)
        self.args = args
        self.workload = workload
        self.vectors = vectors
        self.embedder = get_embedder("hash")
        self.db = Database(Path(args.home), self.embedder.name, self.embedder.dimensions)
        self.db.restore_indexes()
        self.projects: dict[str, Any] = {}
        self.memories: dict[str, Any] = {}
        self.skipped: list[int] = []
        self.statements: dict[str, float] = {}
        self.api = ApiServer(argparse.Namespace(web_workers=args.web_workers), Path(args.home))

    # -- state --

    def reset(self) -> dict[str, Any]:
        """Empty the bench's tables, create the projects, and bulk-load the preloaded items."""
        from engramia import Memory
        from jobs.models import Job
        from memory.services.indexes import PROJECT_INDEX_PREFIX
        from tenants.models import AuditEntry
        from tenants.services import ensure_project

        self.db.sql("TRUNCATE memory_pattern CASCADE")
        # Audit rows and queued jobs of earlier runs would make this run's tables larger.
        self.db.sql(f"TRUNCATE {AuditEntry._meta.db_table}, {Job._meta.db_table} CASCADE")
        for name in self.db.hnsw_indexes():
            if name.startswith(PROJECT_INDEX_PREFIX):
                self.db.sql(f"DROP INDEX {name}")
        for spec in self.workload.specs:
            project = ensure_project(TENANT, spec.slug, actor=None)
            if project.embedding_model != self.embedder.name:
                project.embedding_model = self.embedder.name
                project.save(update_fields=["embedding_model"])
            self.projects[spec.slug] = project
            self.memories[spec.slug] = Memory(project=f"{TENANT}/{spec.slug}")
        if not self.workload.preload:
            return {}
        items = self.workload.items[: self.workload.preload]
        layout = argparse.Namespace(embedder="hash", seed=self.args.seed)
        dataset = Dataset(layout, self.db, self.embedder, Results())
        return dataset.load(
            [self.projects[item.project].pk for item in items],
            [item.task for item in items],
            self.vectors[: self.workload.preload],
        )

    def analyze(self) -> None:
        """Fresh planner statistics after the learn phase (as autovacuum would give soon)."""
        self.db.sql("ANALYZE memory_pattern")

    # -- local mode --

    def learn(self, profile_dir: Path | None) -> dict[str, Any]:
        """Learn the timed items one at a time through Memory.learn (default on_duplicate)."""
        from django.db import connection

        counter = StatementCounter()
        latencies: list[float] = []
        started = time.perf_counter()
        with profiled(profile_dir, "engramia_learn"), connection.execute_wrapper(counter):
            for offset, item in enumerate(self.workload.learned):
                begin = time.perf_counter()
                result = self.memories[item.project].learn(
                    task=item.task, code=item.code, eval_score=self.args.eval_score
                )
                latencies.append(ms_since(begin))
                if not result.stored:
                    self.skipped.append(self.workload.preload + offset)
        seconds = time.perf_counter() - started
        self.statements["per_learn"] = counter.count / max(1, len(latencies))
        return {**summarise_learn(latencies, seconds), "learned": len(latencies)}

    def recall(self, profile_dir: Path | None) -> tuple[dict[str, Any], list[list[str]]]:
        """Memory.recall(limit 10) for every query, one at a time, after a short warm-up."""
        from django.db import connection

        for query in self.workload.warmup:
            self.memories[query.project].recall(query.text, limit=LIMIT)
        counter = StatementCounter()
        latencies: list[float] = []
        found: list[list[str]] = []
        with profiled(profile_dir, "engramia_recall"), connection.execute_wrapper(counter):
            for query in self.workload.queries:
                begin = time.perf_counter()
                matches = self.memories[query.project].recall(query.text, limit=LIMIT)
                latencies.append(ms_since(begin))
                found.append([match.task for match in matches])
        self.statements["per_recall"] = counter.count / max(1, len(latencies))
        return summarise_recall(latencies), found

    def ef_sweep(self, values: list[int]) -> dict[int, tuple[dict[str, Any], list[list[str]]]]:
        """The recall queries again with each value as the smallest ef_search a recall sets."""
        from retrieval import search

        saved, per_recall = search.MIN_EF_SEARCH, self.statements.get("per_recall", 0)
        sweep: dict[int, tuple[dict[str, Any], list[list[str]]]] = {}
        try:
            for value in values:
                search.MIN_EF_SEARCH = value
                sweep[value] = self.recall(None)
        finally:
            search.MIN_EF_SEARCH = saved
            self.statements["per_recall"] = per_recall
        return sweep

    # -- HTTP --

    def editor_key(self) -> str:
        """A tenant-wide editor key for POST /v1/learn (older ones removed)."""
        from django.contrib.auth import get_user_model

        from tenants.choices import Role
        from tenants.models import ApiKey, Tenant
        from tenants.services import create_api_key

        tenant = Tenant.objects.get(slug=TENANT)
        user = get_user_model().objects.get(username="bench@localhost")
        ApiKey.objects.filter(user=user, name=KEY_NAME).delete()
        return create_api_key(
            user=user, tenant=tenant, project=None, name=KEY_NAME, role=Role.EDITOR, actor=None
        ).secret

    def over_http(self, extra: list[Item]) -> tuple[dict[str, Any], list[list[str]]]:
        """POST /v1/recall for every query, then POST /v1/learn for fresh items, through a
        real gunicorn (engramia serve's flags) and one keep-alive httpx client."""
        import httpx

        reader = self.api.api_key()
        editor = self.editor_key()
        self.api.start()
        base = f"http://127.0.0.1:{self.api.port}"
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                self._wait_ready(client)
                for query in self.workload.warmup:
                    self._recall(client, reader, query)
                latencies: list[float] = []
                found: list[list[str]] = []
                for query in self.workload.queries:
                    begin = time.perf_counter()
                    found.append(self._recall(client, reader, query))
                    latencies.append(ms_since(begin))
                learn_ms: list[float] = []
                started = time.perf_counter()
                for item in extra:
                    begin = time.perf_counter()
                    response = client.post(
                        "/v1/learn",
                        json={"task": item.task, "code": item.code, "eval_score": 5.0},
                        headers=self._headers(editor, item.project),
                    )
                    learn_ms.append(ms_since(begin))
                    response.raise_for_status()
                seconds = time.perf_counter() - started
        finally:
            self.api.stop()
        learned = summarise_learn(learn_ms, seconds) if extra else {}
        return {**learned, **summarise_recall(latencies), "learned": len(extra)}, found

    @staticmethod
    def _headers(secret: str, project: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}", "X-Engramia-Project": project}

    def _recall(self, client: Any, secret: str, query: Query) -> list[str]:
        response = client.post(
            "/v1/recall",
            json={"task": query.text, "limit": LIMIT},
            headers=self._headers(secret, query.project),
        )
        response.raise_for_status()
        return [match["task"] for match in response.json()["matches"]]

    def _wait_ready(self, client: Any) -> None:
        import httpx

        deadline = time.monotonic() + 120
        while True:
            try:
                if client.get("/v1/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            server = self.api.server
            if time.monotonic() > deadline or server is None or server.poll() is not None:
                raise RuntimeError(f"gunicorn did not answer; see {self.api.home}/gunicorn.log")
            time.sleep(0.3)
