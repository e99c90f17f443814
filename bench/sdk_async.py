"""What SDK local mode's async twins cost with and without its connection pool.

`arecall`, `alearn` (and every other `a*` twin, which the OpenAI Agents SDK adapter and the
session use) run their call on a worker thread. Such a thread gives its database connection
back after each call. When local mode sets Django up itself it pools connections
(`engramia.local.LOCAL_POOL_SIZE`), so that costs nothing; with `ENGRAMIA_DB_POOL_SIZE=0` every
call opens a new connection. Both settings run the same calls in child processes, alternating,
against one embedded PostgreSQL server, one project of --patterns patterns (hash embedder):

- sync `recall` from the main thread (whose connection is reused either way: the baseline),
- `arecall` and `alearn` awaited one after another,

and report p50/p95 per call and the connections psycopg opened during the timed calls.

Run: .venv/bin/python bench/sdk_async.py [--patterns 2000] [--calls 200] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from recall_bench.report import cpu_model  # noqa: E402

PROJECT = "bench/sdk-async"

# The child: counts psycopg's connects (Django's own and the pool's), loads the project once,
# then times the three kinds of call.
CHILD = r"""
import asyncio, json, os, random, statistics, sys, time
from engramia import Memory
from tests.fakes.connect_counter import count_connects

opened = count_connects()

patterns, calls, seed = (int(value) for value in sys.argv[1:4])
words = ("deploy retry upload parse invoice csv cache warm index build report weekly summary "
         "rotate keys backup restore migrate schema queue worker alert page").split()
rng = random.Random(seed)
def sentence():
    return " ".join(rng.choice(words) for _ in range(10))

memory = Memory(project=os.environ["BENCH_PROJECT"])
if sys.argv[4] == "load":
    for start in range(0, patterns, 500):
        memory.learn_many([
            {"task": f"{sentence()} #{index}", "code": "print(1)", "eval_score": 6.0}
            for index in range(start, min(patterns, start + 500))
        ])
    memory.close()
    print("{}")
    sys.exit(0)

def percentiles(values):
    ordered = sorted(values)
    return {"p50": statistics.median(ordered), "p95": ordered[int(0.95 * (len(ordered) - 1))]}

def timed(function, queries):
    before, took = len(opened), []
    for query in queries:
        start = time.perf_counter()
        function(query)
        took.append(1000 * (time.perf_counter() - start))
    return {**percentiles(took), "opened": len(opened) - before}

async def atimed(function, queries):
    before, took = len(opened), []
    for query in queries:
        start = time.perf_counter()
        await function(query)
        took.append(1000 * (time.perf_counter() - start))
    return {**percentiles(took), "opened": len(opened) - before}

for query in [sentence() for _ in range(10)]:
    memory.recall(query, limit=10)
result = {"recall": timed(lambda q: memory.recall(q, limit=10), [sentence() for _ in range(calls)])}

async def twins():
    for query in [sentence() for _ in range(10)]:
        await memory.arecall(query, limit=10)
    result["arecall"] = await atimed(
        lambda q: memory.arecall(q, limit=10), [sentence() for _ in range(calls)])
    tag = f"{os.getpid()}-{time.time_ns()}"
    result["alearn"] = await atimed(
        lambda q: memory.alearn(task=f"{q} {tag}", code="print(2)", eval_score=5.0),
        [sentence() for _ in range(calls // 2)])

asyncio.run(twins())
memory.close()
print(json.dumps(result))
"""


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patterns", type=int, default=2000, help="patterns in the project")
    parser.add_argument("--calls", type=int, default=200, help="timed calls of each kind")
    parser.add_argument("--rounds", type=int, default=2, help="pooled/unpooled pairs")
    parser.add_argument("--home", default=str(ROOT / ".engramia-bench" / "sdk-async"))
    args = parser.parse_args()
    if args.patterns < 1 or args.calls < 10 or args.rounds < 1:
        parser.error("--patterns must be >= 1, --calls >= 10 and --rounds >= 1")
    return args


def run_child(
    args: argparse.Namespace, pool: str | None, seed: int, mode: str = "time"
) -> dict[str, Any]:
    env = {key: value for key, value in os.environ.items() if key != "ENGRAMIA_DB_POOL_SIZE"}
    env |= {
        "ENGRAMIA_HOME": args.home,
        "ENGRAMIA_EMBEDDINGS": "hash",
        "ENGRAMIA_LOG_LEVEL": "WARNING",
        "ENGRAMIA_LOCAL_JOBS": "off",
        "ENGRAMIA_DATABASE_URL": "",
        "BENCH_PROJECT": PROJECT,
        "OMP_NUM_THREADS": "1",
    }
    if pool is not None:
        env["ENGRAMIA_DB_POOL_SIZE"] = pool
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(args.patterns), str(args.calls), str(seed), mode],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=1800,
    )
    if result.returncode != 0:
        raise SystemExit(f"the child failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    args = parse()
    Path(args.home).mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"dataset: one project of {args.patterns} patterns (hash embedder, 384 dimensions), "
        f"embedded PostgreSQL under {args.home}; {args.calls} timed calls of each kind "
        f"({args.calls // 2} for alearn), limit 10"
    )
    loaded = Path(args.home) / f"loaded-{args.patterns}"
    if not loaded.exists():
        print("loading the project once (learn_many)…", flush=True)
        run_child(args, None, seed=0, mode="load")
        loaded.touch()
    rows: list[tuple[str, dict[str, Any]]] = []
    for round_ in range(1, args.rounds + 1):
        for label, pool in (("pooled (default)", None), ("ENGRAMIA_DB_POOL_SIZE=0", "0")):
            started = time.perf_counter()
            result = run_child(args, pool, seed=round_)
            rows.append((f"{label}, round {round_}", result))
            print(f"  {label}, round {round_}: {time.perf_counter() - started:.1f} s", flush=True)
    print()
    print("| setting | recall p50 / p95 | arecall p50 / p95 | alearn p50 / p95 | opened* |")
    print("|---|---|---|---|---|")
    for label, result in rows:
        cells = [
            f"{result[kind]['p50']:.2f} / {result[kind]['p95']:.2f} ms"
            for kind in ("recall", "arecall", "alearn")
        ]
        opened = "/".join(str(result[kind]["opened"]) for kind in ("recall", "arecall", "alearn"))
        print(f"| {label} | {' | '.join(cells)} | {opened} |")
    print("* connections psycopg opened during the timed recall / arecall / alearn calls")
    pooled = [result for label, result in rows if label.startswith("pooled")]
    unpooled = [result for label, result in rows if not label.startswith("pooled")]
    for kind in ("arecall", "alearn"):
        ratio = sum(r[kind]["p50"] for r in pooled) / sum(r[kind]["p50"] for r in unpooled)
        print(f"{kind} p50, pooled over unpooled: {ratio:.2f}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
