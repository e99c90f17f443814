"""Engramia side by side with mem0: the same workload, the same hash embedder, one run.

Learns N synthetic agent tasks one at a time (after bulk-loading --preload of them) into
Engramia through the SDK in local mode and into mem0 2.2.1 (`infer=False`, pgvector on the
same embedded PostgreSQL server), then times recall (limit 10) per query and scores it against
exact search. Engramia's REST API is timed through a real gunicorn too. mem0 runs in its own
virtualenv (created under .engramia-bench/), never as a project dependency.

Run: .venv/bin/python bench/compare.py --n 10000
     .venv/bin/python bench/compare.py --n 100000 --preload 98000 --json
     .venv/bin/python bench/compare.py --n 100000 --projects 150 --preload 98000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from compare_bench import mem0_side, report
from compare_bench.common import ROOT, hash_embedder
from compare_bench.workload import Truth, build, extra_items, write_files
from recall_bench.dataset import embed_in_chunks
from recall_bench.report import load_average
from recall_bench.setup import configure

sys.path.insert(0, str(ROOT))


def parse() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, required=True, help="items in the dataset")
    parser.add_argument("--projects", type=int, default=1, help="projects (Zipf sizes)")
    parser.add_argument("--zipf", type=float, default=1.0, help="size ~ rank^-s")
    parser.add_argument("--queries", type=int, default=200, help="timed recall queries")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--preload",
        type=int,
        default=0,
        help="items bulk-loaded (COPY) into both systems; the rest are learned one at a time",
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON document")
    parser.add_argument("--skip-mem0", action="store_true")
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--api-learn", type=int, default=200, help="POST /v1/learn calls")
    parser.add_argument("--eval-score", type=float, default=5.0, help="learn's eval_score")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--profile", default=None, help="cProfile Engramia's loops into DIR")
    parser.add_argument(
        "--ef-sweep",
        type=int,
        nargs="*",
        default=[],
        metavar="EF",
        help="after the timed recalls, the same queries again (local mode) with each of these "
        "as MIN_EF_SEARCH (the smallest hnsw.ef_search a recall sets); JSON: engramia_ef_sweep",
    )
    parser.add_argument("--home", default=str(ROOT / ".engramia-bench" / "compare"))
    parser.add_argument("--mem0-venv", default=str(ROOT / ".engramia-bench" / "mem0-venv"))
    parser.add_argument(
        "--database-url",
        default=None,
        help="a database the bench may TRUNCATE (default: embedded, under --home)",
    )
    args = parser.parse_args()
    if not 0 <= args.preload < args.n:
        parser.error("--preload must be at least 0 and below --n")
    if args.projects < 1 or args.n < args.projects * 10:
        parser.error("--n must give every project at least 10 items")
    return args


def run_engramia(args: argparse.Namespace, workload: Any, vectors: Any) -> dict[str, Any]:
    """Engramia local mode, then the HTTP API; numbers and what each returned."""
    from compare_bench.engramia_side import EngramiaSide

    side = EngramiaSide(args, workload, vectors)
    profile = Path(args.profile) if args.profile else None
    loads = {"start": load_average()}
    print(f"Engramia: loading {workload.preload} items, learning {len(workload.learned)}")
    preload = side.reset()
    local = side.learn(profile)
    side.analyze()
    recalled, found = side.recall(profile)
    local.update(recalled)
    loads["after_local"] = load_average()
    result: dict[str, Any] = {"local": local, "found": found, "preload": preload, "side": side}
    if args.ef_sweep:
        print(f"Engramia: the same queries at MIN_EF_SEARCH {args.ef_sweep}")
        result["ef_sweep"] = side.ef_sweep(args.ef_sweep)
        loads["after_ef_sweep"] = load_average()
    if not args.skip_api:
        print("Engramia: the same queries through gunicorn, then POST /v1/learn")
        extra = extra_items(workload, args.api_learn, args.seed)
        result["api"], result["api_found"] = side.over_http(extra)
        loads["after_api"] = load_average()
    result["loads"] = loads
    return result


def run_mem0(args: argparse.Namespace, files: dict[str, str]) -> dict[str, Any]:
    """mem0 in its own virtualenv, on its own database of the same server."""
    from django.conf import settings

    python = mem0_side.ensure_venv(Path(args.mem0_venv))
    uri = mem0_side.ensure_database(settings.DATABASE_URL)
    print("mem0: same workload in a subprocess")
    loads = {"start": load_average()}
    result = mem0_side.run(
        python=python,
        database_uri=uri,
        files=files,
        preload=args.preload,
        home=Path(args.home),
    )
    loads["end"] = load_average()
    result["loads"] = loads
    return result


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """The whole comparison; the contract's JSON document."""
    import numpy as np

    configure(args.home, "hash", args.database_url)
    started = time.perf_counter()
    base: dict[str, Any] = {"machine": report.machine()}
    workload = build(
        n=args.n,
        projects=args.projects,
        zipf=args.zipf,
        seed=args.seed,
        learn=args.n - args.preload,
        queries=args.queries,
    )
    embedder = hash_embedder(384)
    vectors = embed_in_chunks(embedder, [item.task for item in workload.items])
    files = write_files(workload, vectors, Path(args.home) / "workload")
    truth = Truth(workload, vectors, embedder)

    engramia = run_engramia(args, workload, vectors)
    side = engramia.pop("side")
    stored = np.ones(len(workload.items), dtype=bool)
    stored[side.skipped] = False
    local = engramia["local"] | truth.recall_at_10(engramia["found"], stored)
    sweep = {
        str(ef): report.block(numbers | truth.recall_at_10(found, stored))
        for ef, (numbers, found) in engramia.pop("ef_sweep", {}).items()
    }
    api = None
    if "api" in engramia:
        api = engramia["api"] | truth.recall_at_10(engramia["api_found"], stored)
    mem0 = None
    if not args.skip_mem0:
        outcome = run_mem0(args, files)
        mem0 = outcome["learn"] | outcome["recall"]
        mem0 |= truth.recall_at_10(outcome["found"]["found"])
        stage = truth.recall_at_10(outcome["found"]["vector_stage_found"])
        mem0["recall_at_10_vector_stage"] = stage["recall_at_10"]
        base["mem0"] = {
            **outcome["about"],
            "config": "Memory.from_config: pgvector (hnsw=True, mem0's own table and indexes), "
            "embedding model replaced by the hash embedder, llm and embedder endpoints at "
            "127.0.0.1:9 (never called: infer=False), history in SQLite (mem0's default)",
            "add": "Memory.add(task, user_id=<project>, infer=False, metadata={'code': code})",
            "search": "Memory.search(query, top_k=10, filters={'user_id': <project>}): pgvector "
            "top 60, BM25 keyword search and score blend (threshold 0.1)",
            "network_attempts": outcome["network_attempts"],
            "preload": outcome["preload"],
            "load_average": outcome["loads"],
        }
    base["engramia"] = engramia_conditions(args, side, engramia)
    base["postgres"] = report.postgres(side.db)
    base["machine"]["load_average_end"] = load_average()
    base["runtime_s"] = round(time.perf_counter() - started, 1)
    base["order"] = "Engramia local, Engramia API, mem0 (one after the other)"
    document: dict[str, Any] = {
        "conditions": report.conditions(args, workload.layout(), base),
        "engramia": report.block(local),
        "mem0": report.block(mem0),
        "ratios": report.ratios(local, mem0),
        "engramia_api": report.block(api),
    }
    if sweep:
        document["engramia_ef_sweep"] = sweep
    document["targets"] = report.targets(document)
    return document


def engramia_conditions(args: argparse.Namespace, side: Any, run: dict[str, Any]) -> dict[str, Any]:
    """How Engramia ran, and what the engine did (duplicates, statements, indexes)."""
    from memory.services import recall
    from retrieval import search

    return {
        "learn": f"engramia.Memory(project='bench/<slug>').learn(task, code, eval_score="
        f"{args.eval_score}) (local mode, default on_duplicate='skip')",
        "recall": "Memory.recall(query, limit=10)",
        "skipped_as_duplicates": len(side.skipped),
        "sql_statements_per_learn": round(side.statements.get("per_learn", 0), 2),
        "sql_statements_per_recall": round(side.statements.get("per_recall", 0), 2),
        "recall_constants": {
            **{name: getattr(recall, name) for name in ("CANDIDATE_FACTOR", "MIN_CANDIDATES")},
            **{
                name: getattr(search, name)
                for name in ("EXACT_SEARCH_MAX_ROWS", "HNSW_EF_SEARCH", "MIN_EF_SEARCH")
            },
        },
        "hnsw_indexes": [d.split(" USING ")[1] for d in side.db.hnsw_indexes().values()],
        "preload": run["preload"],
        "api": None
        if args.skip_api
        else f"engramia serve's web server (gunicorn engramia_site.asgi, {args.web_workers} "
        "uvicorn workers, a connection pool each), 127.0.0.1; one keep-alive httpx client; "
        "tenant-wide keys with X-Engramia-Project; "
        f"learn: {args.api_learn} fresh items after the recall queries",
        "load_average": run["loads"],
    }


def main() -> None:
    """Run; with --json print only the document (progress goes to stderr)."""
    args = parse()
    sink = sys.stderr if args.json else sys.stdout
    with contextlib.redirect_stdout(sink):
        document = measure(args)
    if not args.json:
        print("\n" + report.table(document) + "\n")
    print(json.dumps(document, indent=1, default=str))


if __name__ == "__main__":
    main()
