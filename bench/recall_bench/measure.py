"""The measurements of one run: per table size, recall through the service against the raw SQL
it issues (and recall@10 against exact search), the HTTP API, the exact-vs-HNSW threshold
study, HNSW index variants, and learn / bulk-import cost."""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .api import ApiServer
from .dataset import (
    TENANT,
    Dataset,
    ProjectSpec,
    code_text,
    project_specs,
    query_texts,
    task_text,
)
from .report import Results, judge_size, load_average, ms_since, percentile
from .sql import LIMIT, Database, recall_at

BULK_PROJECT = "bulk-import"
EF_SWEEP = (40, 100, 200, 400)


class Bench:
    """One run: a database, a tenant of skewed projects, an API server, and the measurements.

    Construct only after Django is configured (it imports app code and migrates).
    """

    def __init__(self, args: argparse.Namespace) -> None:
        from django.core.management import call_command

        from memory.services import recall as recall_module
        from retrieval import search as search_module
        from retrieval.embeddings import get_embedder

        self.args = args
        self.recall = recall_module
        self.search = search_module
        self.results = Results()
        self.home = Path(args.home).resolve()
        call_command("migrate", interactive=False, verbosity=0)
        self.embedder = get_embedder(args.embedder)
        self.model = self.embedder.name
        self.db = Database(self.home, self.model, self.embedder.dimensions)
        self.db.restore_indexes()
        self.dataset = Dataset(args, self.db, self.embedder, self.results)
        self.api = ApiServer(args, self.home)

    # -- sizes and buckets --

    def buckets(self, specs: list[ProjectSpec]) -> dict[str, list[ProjectSpec]]:
        """Projects grouped by size; up to --per-bucket each, spread over the bucket's range."""
        threshold = self.search.EXACT_SEARCH_MAX_ROWS
        bounds = {
            "tiny <100": (0, 99),
            "small 100-999": (100, 999),
            f"medium 1k-{threshold}": (1000, threshold),
            f"large >{threshold} (HNSW)": (threshold + 1, 10**12),
        }
        grouped: dict[str, list[ProjectSpec]] = {}
        for name, (low, high) in bounds.items():
            members = sorted((s for s in specs if low <= s.size <= high), key=lambda s: s.size)
            if not members:
                continue
            count = min(self.args.per_bucket, len(members))
            picks = {round(i * (len(members) - 1) / max(1, count - 1)) for i in range(count)}
            grouped[name] = [members[i] for i in sorted(picks)]
        return grouped

    def measure_size(self, total: int) -> None:
        """Seed one table size and measure everything at it."""
        from django.db import connection

        from memory.services.recall import recall_patterns

        args = self.args
        print(f"\n=== N = {total} patterns, embedder {self.model} ===")
        specs = project_specs(total, args)
        sizes = sorted((s.size for s in specs), reverse=True)
        layout = {
            "projects": len(specs),
            "largest": sizes[:5],
            "largest_share": round(sizes[0] / total, 3),
            "median": int(statistics.median(sizes)),
            "smallest": sizes[-1],
            "above_threshold": sum(1 for s in sizes if s > self.search.EXACT_SEARCH_MAX_ROWS),
            "rows_in_projects_above_threshold": sum(
                s for s in sizes if s > self.search.EXACT_SEARCH_MAX_ROWS
            ),
        }
        print(
            f"  projects {layout['projects']} (Zipf s={args.zipf}): largest {layout['largest']}"
            f" ({layout['largest_share']:.0%} of the table), median {layout['median']}, "
            f"smallest {layout['smallest']}; {layout['above_threshold']} above "
            f"EXACT_SEARCH_MAX_ROWS={self.search.EXACT_SEARCH_MAX_ROWS}"
        )
        report: dict[str, Any] = {"layout": layout, "load_average_start": load_average()}
        self.results.sizes[total] = report
        report["seed"] = self.dataset.seed(total, specs)
        # The bench's own heap (texts and vectors of the whole dataset) is not what a web
        # worker holds: keep the collector from rescanning it during the measurements.
        gc.collect()
        gc.freeze()

        grouped = self.buckets(specs)
        report["buckets"] = {}
        queries_for_api: dict[str, list[tuple[ProjectSpec, str, list[int]]]] = {}
        print(
            "\n  recall through the service vs the raw SQL it issues "
            f"(limit {LIMIT}; {args.queries} queries per bucket; ms)"
        )
        print(
            f"  {'bucket':26s} {'rows':>12s} {'path':>5s} {'svc p50':>8s} {'p95':>7s} "
            f"{'svc*p50':>8s} {'sql p50':>8s} {'all p50':>8s} {'exact':>7s} {'ratio':>6s} "
            f"{'recall@10':>9s} {'min':>5s}"
        )
        embed_ms: list[float] = []
        for name, members in grouped.items():
            # Round-robin over the bucket's projects, so the first pass covers each once.
            per_project = math.ceil(args.queries / len(members))
            streams = [
                [(spec, text) for text in query_texts(spec, per_project, args.seed)]
                for spec in members
            ]
            queries = [pair for group in zip(*streams, strict=True) for pair in group]
            queries = queries[: max(args.queries, len(members))]
            service, cached, select, issued, exact, recalls = [], [], [], [], [], []
            strategies: set[str] = set()
            by_project: dict[str, list[float]] = {}
            plans: list[dict[str, Any]] = []
            api_queries: list[tuple[ProjectSpec, str, list[int]]] = []
            for index, (spec, text) in enumerate(queries):
                project = self.dataset.projects[spec.slug]
                statements: list[tuple[str, Any]] = []

                def record(
                    execute: Callable[..., Any],
                    sql: str,
                    params: Any,
                    many: bool,
                    context: Any,
                    _log: list[tuple[str, Any]] = statements,
                ) -> Any:
                    _log.append((sql, params))
                    return execute(sql, params, many, context)

                begin = time.perf_counter()
                self.embedder.embed_query(f"{text} (embed probe)")
                embed_ms.append(ms_since(begin))
                begin = time.perf_counter()
                with connection.execute_wrapper(record):
                    result = recall_patterns(project=project, task=text, limit=LIMIT)
                service.append(ms_since(begin))
                begin = time.perf_counter()
                again = recall_patterns(project=project, task=text, limit=LIMIT)
                cached.append(ms_since(begin))
                strategies.add(result.strategy)
                found = [match.pattern_id for match in result.matches]
                assert found == [match.pattern_id for match in again.matches]
                select_ms, all_ms = self.db.replay(statements)
                select.append(select_ms)
                issued.append(all_ms)
                exact_ms, truth = self.db.exact_truth(project, self.embedder.embed_query(text))
                exact.append(exact_ms)
                recalls.append(recall_at(truth, found))
                by_project.setdefault(spec.slug, []).append(recalls[-1])
                api_queries.append((spec, text, found))
                if index < len(members):
                    plans.append(
                        {"project": spec.slug, "rows": spec.size, **self.db.explain(statements)}
                    )
            ratio = percentile(cached, 0.5) / percentile(select, 0.5)
            row = {
                "projects": [(s.slug, s.size) for s in members],
                "path": "/".join(sorted(strategies)),
                "service_p50": percentile(service, 0.5),
                "service_p95": percentile(service, 0.95),
                "service_cached_p50": percentile(cached, 0.5),
                "sql_select_p50": percentile(select, 0.5),
                "sql_all_p50": percentile(issued, 0.5),
                "exact_p50": percentile(exact, 0.5),
                "service_over_sql": ratio,
                "recall_mean": statistics.fmean(recalls),
                "recall_min": min(recalls),
                "recall_by_project": {
                    slug: (statistics.fmean(values), min(values))
                    for slug, values in by_project.items()
                },
                "queries": len(queries),
                "plans": plans,
                "statements": len(statements),
            }
            report["buckets"][name] = row
            queries_for_api[name] = api_queries
            span = f"{members[0].size}-{members[-1].size}"
            print(
                f"  {name:26s} {span:>12s} {row['path']:>5s} {row['service_p50']:8.2f} "
                f"{row['service_p95']:7.2f} {row['service_cached_p50']:8.2f} "
                f"{row['sql_select_p50']:8.2f} {row['sql_all_p50']:8.2f} "
                f"{row['exact_p50']:7.2f} {ratio:6.2f} {row['recall_mean']:9.3f} "
                f"{row['recall_min']:5.2f}"
            )
        report["embed_query_p50"] = percentile(embed_ms, 0.5)
        print(
            f"  svc = recall_patterns end to end (query embedded, uncached); svc* = the same "
            f"call again with the query vector cached; sql = the candidate SELECT it issued, "
            f"replayed; all = every statement it issued (size probe, SET LOCALs, SELECT); "
            f"exact = exact search of the project; ratio = svc*/sql. embed_query p50 "
            f"{report['embed_query_p50']:.2f} ms"
        )
        print("  plans (EXPLAIN ANALYZE of the service's SELECT, one per project):")
        for name, row in report["buckets"].items():
            for plan in row["plans"]:
                print(
                    f"    {name:26s} {plan['project']} ({plan['rows']} rows): "
                    f"{plan['execution_ms']:.2f} ms exec + {plan['planning_ms']:.2f} ms plan, "
                    f"{', '.join(plan['indexes'])}{', JIT' if plan['jit'] else ''}"
                )

        misses = [
            f"{slug} {mean:.3f} (min {low:.2f})"
            for row in report["buckets"].values()
            for slug, (mean, low) in row["recall_by_project"].items()
            if low < 1.0
        ]
        print(f"  projects with a query below recall 1.0: {', '.join(misses) or 'none'}")

        if not args.skip_api:
            self.api.measure(report, queries_for_api)
        if total == max(args.sizes):
            report["threshold_study"] = self.threshold_study(specs)
            if args.index_variants:
                self.index_variants(specs, report)
        self.measure_learn(total, specs, report)
        report["load_average_end"] = load_average()
        print(
            f"\n  load average {report['load_average_start']} at the start of this size, "
            f"{report['load_average_end']} at its end"
        )
        judge_size(self.results, args.embedder, total, report)

    # -- threshold and ef_search --

    def threshold_study(
        self, specs: list[ProjectSpec], *, min_rows: int = 0, title: str = ""
    ) -> list[dict[str, Any]]:
        """By project size: exact cost, and the HNSW-path SQL's plan, cost and recall@10 at
        several ef_search, as the planner runs it and with the HNSW index forced."""
        threshold = self.search.EXACT_SEARCH_MAX_ROWS
        ladder = [
            300,
            1000,
            2000,
            3000,
            4000,
            threshold,
            int(threshold * 1.3),
            10000,
            max(s.size for s in specs),
        ]
        members = {min(specs, key=lambda s: abs(s.size - target)).slug for target in ladder}
        chosen = sorted(
            (s for s in specs if s.slug in members and s.size >= min_rows), key=lambda s: s.size
        )
        count = self.args.study_queries
        print(
            f"\n  {title or 'exact vs HNSW path by project size'} ({count} queries each; "
            "ms). 'planner' = the service's HNSW-path SQL as PostgreSQL plans it; 'forced' = "
            "the same with enable_sort off, so the HNSW index must give the order"
        )
        print(
            f"  {'project':8s} {'rows':>6s} {'exact':>7s} {'us/row':>6s} {'ef':>4s} "
            f"{'plan':>6s} {'p50':>7s} {'recall':>6s} {'min':>5s} {'forced':>7s} "
            f"{'recall':>6s} {'min':>5s}"
        )
        rows = []
        for spec in chosen:
            project = self.dataset.projects[spec.slug]
            vectors = [
                self.embedder.embed_query(text)
                for text in query_texts(spec, count, self.args.seed + 7)
            ]
            truths = [self.db.exact_truth(project, vector)[1] for vector in vectors]
            exact = [self.db.run_candidates(project, v, hnsw=False)[0] for v in vectors]
            row: dict[str, Any] = {
                "project": spec.slug,
                "rows": spec.size,
                "exact_p50": percentile(exact, 0.5),
                "ef": {},
            }
            # Forced HNSW on small projects costs up to hnsw.max_scan_tuples per query: one ef.
            sweep = EF_SWEEP if spec.size >= 1000 else (self.search.HNSW_EF_SEARCH,)
            for ef in sweep:
                cell: dict[str, Any] = {}
                for mode in ("planner", "forced"):
                    times, recalls, paths = [], [], set()
                    for index, (vector, truth) in enumerate(zip(vectors, truths, strict=True)):
                        elapsed, found, path = self.db.run_candidates(
                            project,
                            vector,
                            hnsw=True,
                            ef_search=ef,
                            force=mode == "forced",
                            explain=index == 0,
                        )
                        times.append(elapsed)
                        recalls.append(recall_at(truth, found))
                        paths.add(path)
                    cell[mode] = {
                        "p50": percentile(times, 0.5),
                        "recall": statistics.fmean(recalls),
                        "min": min(recalls),
                        "plan": "".join(sorted(paths)),
                    }
                row["ef"][ef] = cell
                planner, forced = cell["planner"], cell["forced"]
                print(
                    f"  {spec.slug:8s} {spec.size:6d} {row['exact_p50']:7.2f} "
                    f"{row['exact_p50'] * 1000 / spec.size:6.2f} {ef:4d} {planner['plan']:>6s} "
                    f"{planner['p50']:7.2f} {planner['recall']:6.3f} {planner['min']:5.2f} "
                    f"{forced['p50']:7.2f} {forced['recall']:6.3f} {forced['min']:5.2f}"
                )
            rows.append(row)
        return rows

    def index_variants(self, specs: list[ProjectSpec], report: dict[str, Any]) -> None:
        """Rebuild the model's HNSW index with other (m, ef_construction), rerun the study on
        projects of 1k+ rows, then restore the migration's index."""
        import re

        from memory.services.indexes import PROJECT_INDEX_PREFIX

        # The shared index of the model; projects with their own index do not use it.
        name, original = next(
            (n, d)
            for n, d in self.db.hnsw_indexes().items()
            if f"'{self.model}'" in d and not n.startswith(PROJECT_INDEX_PREFIX)
        )
        report["index_variants"] = {}
        for variant in self.args.index_variants:
            m, ef_construction = (int(part) for part in variant.split(":"))
            definition = re.sub(
                r"WITH \([^)]*\)", f"WITH (m='{m}', ef_construction='{ef_construction}')", original
            )
            self.db.index_file.write_text(json.dumps({name: original}))
            self.db.sql(f"DROP INDEX {name}")
            begin = time.perf_counter()
            with self.db.connection.cursor() as cursor:
                cursor.execute("SET maintenance_work_mem = '1GB'")
                cursor.execute(definition)
                cursor.execute("RESET maintenance_work_mem")
            build_s = time.perf_counter() - begin
            rows = self.threshold_study(
                specs,
                min_rows=1000,
                title=f"index variant m={m}, ef_construction={ef_construction} (built in "
                f"{build_s:.0f} s)",
            )
            report["index_variants"][variant] = {"build_s": build_s, "study": rows}
            self.db.sql(f"DROP INDEX {name}")
            with self.db.connection.cursor() as cursor:
                cursor.execute("SET maintenance_work_mem = '1GB'")
                cursor.execute(original)
                cursor.execute("RESET maintenance_work_mem")
            self.db.index_file.unlink()

    # -- learn and bulk import --

    def measure_learn(self, total: int, specs: list[ProjectSpec], report: dict[str, Any]) -> None:
        """learn_pattern latency into a small and the largest project; learn_patterns_bulk rate."""
        from engramia_site.request_context import acting_as
        from memory.services import LearnItem, learn_pattern, learn_patterns_bulk
        from tenants.services import ensure_project

        small = min(specs, key=lambda s: abs(s.size - 200))
        large = max(specs, key=lambda s: s.size)
        report["learn"] = {}
        print(f"\n  learn_pattern ({self.args.learn} calls per project, fresh tasks; ms)")
        with acting_as(label="bench"):
            for spec in (small, large):
                project = self.dataset.projects[spec.slug]
                rng = random.Random(f"{self.args.seed}:learn:{spec.rank}:{total}")
                latencies, stored_ids, skipped = [], [], 0
                for index in range(self.args.learn):
                    text = f"{task_text(rng, spec)} (run {index})"
                    begin = time.perf_counter()
                    outcome = learn_pattern(
                        project=project, task=text, code=code_text(text), source="bench", actor=None
                    )
                    latencies.append(ms_since(begin))
                    if outcome.stored:
                        stored_ids.append(outcome.pattern_id)
                    else:
                        skipped += 1
                self.db.sql(
                    "DELETE FROM memory_evaluation WHERE pattern_id = ANY(%s)", [stored_ids]
                )
                self.db.sql("DELETE FROM memory_pattern WHERE id = ANY(%s)", [stored_ids])
                row = {
                    "rows": spec.size,
                    "p50": percentile(latencies, 0.5),
                    "p95": percentile(latencies, 0.95),
                    "stored": len(stored_ids),
                    "skipped": skipped,
                }
                report["learn"][spec.slug] = row
                print(
                    f"  {spec.slug} ({spec.size} rows): p50 {row['p50']:.2f}  p95 "
                    f"{row['p95']:.2f}  stored {row['stored']}, skipped as duplicates "
                    f"{skipped}"
                )

            project = ensure_project(TENANT, BULK_PROJECT, actor=None)
            project.embedding_model = self.model
            project.save(update_fields=["embedding_model"])
            self.db.sql("DELETE FROM memory_pattern WHERE project_id = %s", [project.pk])
            spec = ProjectSpec(BULK_PROJECT, 0, 0, "data", ["S3", "Postgres"])
            rng = random.Random(f"{self.args.seed}:bulk:{total}")
            items = []
            for index in range(self.args.bulk):
                text = f"{task_text(rng, spec)} (import {index})"
                items.append(
                    LearnItem(task=text, code=code_text(text), external_id=f"bench-{index}")
                )
            begin = time.perf_counter()
            imported = learn_patterns_bulk(project=project, items=items, actor=None)
            elapsed = time.perf_counter() - begin
            self.db.sql("DELETE FROM memory_pattern WHERE project_id = %s", [project.pk])
        report["bulk"] = {
            "items": len(items),
            "imported": imported.imported,
            "seconds": elapsed,
            "per_second": imported.imported / elapsed,
        }
        print(
            f"  learn_patterns_bulk: {imported.imported} patterns in {elapsed:.1f} s = "
            f"{imported.imported / elapsed:.0f} patterns/s (batches of 256, HNSW index live)"
        )


@contextmanager
def bench_session(args: argparse.Namespace) -> Iterator[Bench]:
    """A bench whose API server is always stopped, however the run ends."""
    bench = Bench(args)
    try:
        yield bench
    finally:
        bench.api.stop()
