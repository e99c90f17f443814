"""Engramia at scale: 1M patterns over 1,000 projects of Zipf sizes, COPY-loaded.

Reports recall p50/p95 and recall@10 against exact search for tiny, small, medium and large
projects, learn p50 (learn_pattern into a ~200-row and the largest project, and the bulk path's
rate), disk bytes per pattern, the build time of the model's HNSW index and of each project's
own index (sync_project_indexes), and the database's memory (shared_buffers, RSS/PSS of the
postgres processes). Hash embedder; its own embedded server under .engramia-bench/scale.

Run: .venv/bin/python bench/scale.py                                  # 1M / 1,000 projects
     .venv/bin/python bench/scale.py --n 100000 --projects 100        # smoke, a few minutes
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from recall_bench import ROOT
from recall_bench.dataset import query_texts
from recall_bench.measure import bench_session
from recall_bench.report import load_average, ms_since, percentile, record_conditions
from recall_bench.setup import configure
from recall_bench.sql import LIMIT, recall_at

sys.path.insert(0, str(ROOT))


def parse() -> argparse.Namespace:
    """The command line (plus the recall bench's settings this script does not vary)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--zipf", type=float, default=1.0, help="size ~ rank^-s")
    parser.add_argument("--per-bucket", type=int, default=3, help="projects sampled per bucket")
    parser.add_argument("--queries", type=int, default=40, help="recall queries per bucket")
    parser.add_argument("--learn", type=int, default=40, help="learn_pattern calls per project")
    parser.add_argument("--bulk", type=int, default=2000, help="learn_patterns_bulk items")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="keep a table holding this dataset")
    parser.add_argument("--home", default=str(ROOT / ".engramia-bench" / "scale"))
    parser.add_argument("--database-url", default=None, help="a database the bench may TRUNCATE")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args()
    args.embedder, args.local_unique, args.web_workers, args.skip_api = "hash", 0, 2, True
    return args


def recall_by_bucket(bench: Any, specs: list[Any]) -> dict[str, Any]:
    """recall_patterns (limit 10) per size bucket: latency and recall@10 against exact."""
    from memory.services.recall import recall_patterns

    rows: dict[str, Any] = {}
    print(f"\n  {'bucket':26s} {'rows':>13s} {'p50 ms':>7s} {'p95 ms':>7s} {'recall@10':>9s} min")
    for name, members in bench.buckets(specs).items():
        per_project = -(-bench.args.queries // len(members))
        latencies, recalls, paths = [], [], set()
        for spec in members:
            project = bench.dataset.projects[spec.slug]
            for text in query_texts(spec, per_project, bench.args.seed):
                begin = time.perf_counter()
                result = recall_patterns(project=project, task=text, limit=LIMIT)
                latencies.append(ms_since(begin))
                paths.add(result.strategy)
                truth = bench.db.exact_truth(project, bench.embedder.embed_query(text))[1]
                recalls.append(recall_at(truth, [m.pattern_id for m in result.matches]))
        rows[name] = {
            "projects": [(spec.slug, spec.size) for spec in members],
            "path": "/".join(sorted(paths)),
            "p50_ms": percentile(latencies, 0.5),
            "p95_ms": percentile(latencies, 0.95),
            "recall_at_10": statistics.fmean(recalls),
            "recall_at_10_min": min(recalls),
            "queries": len(latencies),
        }
        row = rows[name]
        span = f"{members[0].size}-{members[-1].size}"
        print(
            f"  {name:26s} {span:>13s} {row['p50_ms']:7.2f} {row['p95_ms']:7.2f} "
            f"{row['recall_at_10']:9.3f} {row['recall_at_10_min']:.2f}"
        )
    return rows


def disk(db: Any) -> dict[str, Any]:
    """The pattern table's bytes (heap, TOAST, every index) and bytes per pattern."""
    total, heap, indexes, count = db.sql(
        "SELECT pg_total_relation_size('memory_pattern'), pg_relation_size('memory_pattern'), "
        "pg_indexes_size('memory_pattern'), (SELECT count(*) FROM memory_pattern)"
    )[0]
    sizes = db.sql(
        "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index "
        "WHERE indrelid = 'memory_pattern'::regclass ORDER BY 2 DESC"
    )
    return {
        "rows": count,
        "total_bytes": total,
        "heap_bytes": heap,
        "index_bytes": indexes,
        "bytes_per_pattern": total / max(1, count),
        "index_sizes": dict(sizes),
    }


def database_memory(db: Any, home: Path) -> dict[str, Any]:
    """shared_buffers and the resident memory of the server's processes (PSS counts shared
    pages once, split between the processes that map them)."""
    import psutil

    from engramia_site.embedded_db import embedded_server_pid

    found: dict[str, Any] = {"shared_buffers": db.setting("shared_buffers")}
    pid = embedded_server_pid(home)
    if pid is None:
        found["processes"] = "not the embedded server (--database-url)"
        return found
    processes = [psutil.Process(pid), *psutil.Process(pid).children()]
    rss = pss = 0
    for process in processes:
        try:
            info = process.memory_full_info()
        except (psutil.Error, AttributeError):
            continue
        rss += info.rss
        pss += getattr(info, "pss", 0)
    found.update(processes=len(processes), rss_bytes=rss, pss_bytes=pss)
    return found


def main() -> None:
    """Seed, measure, print, and write --json."""
    args = parse()
    started = time.perf_counter()
    configure(args.home, "hash", args.database_url)
    from recall_bench.dataset import project_specs

    with bench_session(args) as bench:
        results = bench.results
        record_conditions(args, bench.db, bench.embedder, results)
        specs = project_specs(args.n, args)
        sizes = sorted((spec.size for spec in specs), reverse=True)
        print(f"\n=== N = {args.n} over {len(specs)} projects: largest {sizes[:3]}, ...")
        report: dict[str, Any] = {"load_average_start": load_average()}
        report["seed"] = bench.dataset.seed(args.n, specs)
        gc.collect()
        gc.freeze()  # the bench's own dataset is not what a web worker holds
        report["recall"] = recall_by_bucket(bench, specs)
        bench.measure_learn(args.n, specs, report)
        report["disk"] = disk(bench.db)
        report["database_memory"] = database_memory(bench.db, Path(args.home).resolve())
        report["load_average_end"] = load_average()
        seed = report["seed"]
        builds = seed.get("project_index_builds_s", {})
        slowest = max(builds.values(), default=0)
        print(
            f"\n  load: COPY {seed.get('copy_s', 0):.0f} s, model HNSW index "
            f"{seed.get('index_s', 0):.0f} s, {len(builds)} project indexes "
            f"{seed.get('project_index_s', 0):.0f} s (slowest {slowest:.0f} s)"
        )
        print(
            f"  disk {report['disk']['total_bytes'] / 2**30:.2f} GiB = "
            f"{report['disk']['bytes_per_pattern']:.0f} bytes/pattern; database memory "
            f"{report['database_memory']}"
        )
        results.sizes[args.n] = report
        results.conditions["load_average_end"] = load_average()
        if args.json:
            Path(args.json).write_text(
                json.dumps({"conditions": results.conditions, "scale": report}, default=str)
            )
    print(f"total runtime {timedelta(seconds=round(time.perf_counter() - started))}")


if __name__ == "__main__":
    main()
