"""Benchmark scoped recall: latency (service, HTTP API, raw SQL), recall@10, learn and import.

Seeds N patterns over projects of Zipf-skewed sizes into a database of its own (the embedded
server under ENGRAMIA_HOME=.engramia-bench/recall unless --home/--database-url say otherwise; the
bench truncates its patterns table, so it never shares a cluster with dev data or other benches),
then reports in one run: recall through recall_patterns, through a real gunicorn over HTTP, and
as the raw SQL the service issues; recall@10 against exact search per project size; the cost of
exact search against project size and the HNSW path's recall at several ef_search values; learn
latency and bulk import throughput. Targets from issue 3 are printed with PASS/MISS.

Run: .venv/bin/python bench/recall.py --sizes 10000 100000 --embedder hash
     .venv/bin/python bench/recall.py --sizes 10000 100000 --embedder local
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta

from recall_bench import ROOT
from recall_bench.measure import bench_session
from recall_bench.report import print_summary, record_conditions
from recall_bench.setup import configure

sys.path.insert(0, str(ROOT))


def main() -> None:
    """Parse arguments, configure Django, measure every size, print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--embedder", choices=("hash", "local"), default="hash")
    parser.add_argument("--projects", type=int, default=150)
    parser.add_argument("--zipf", type=float, default=1.0, help="size ~ rank^-s")
    parser.add_argument("--per-bucket", type=int, default=3, help="projects sampled per bucket")
    parser.add_argument("--queries", type=int, default=40, help="service queries per bucket")
    parser.add_argument("--api-requests", type=int, default=40, help="HTTP requests per bucket")
    parser.add_argument(
        "--study-queries",
        type=int,
        default=40,
        help="queries per project in the exact-vs-HNSW study",
    )
    parser.add_argument("--learn", type=int, default=40, help="learn_pattern calls per project")
    parser.add_argument(
        "--bulk",
        type=int,
        default=None,
        help="patterns for learn_patterns_bulk (default 2000 hash, 1000 local)",
    )
    parser.add_argument(
        "--local-unique",
        type=int,
        default=0,
        help="distinct texts embedded with the local model, the rest perturbed copies (0: all)",
    )
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument(
        "--index-variants",
        nargs="*",
        default=[],
        metavar="M:EF_CONSTRUCTION",
        help="also rebuild the HNSW index with these parameters and compare",
    )
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the table when it already holds this dataset (skip seeding)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--home", default=str(ROOT / ".engramia-bench" / "recall"))
    parser.add_argument(
        "--database-url",
        default=None,
        help="a database the bench may TRUNCATE (default: embedded, under --home)",
    )
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args()
    args.sizes = sorted(args.sizes)
    if args.bulk is None:
        args.bulk = 2000 if args.embedder == "hash" else 1000
    started = time.perf_counter()
    configure(args.home, args.embedder, args.database_url)
    with bench_session(args) as bench:
        record_conditions(args, bench.db, bench.embedder, bench.results)
        for total in args.sizes:
            bench.measure_size(total)
        print_summary(bench.model, bench.results)
        if args.json:
            bench.results.write_json(args.json)
    print(f"total runtime {timedelta(seconds=round(time.perf_counter() - started))}")


if __name__ == "__main__":
    main()
