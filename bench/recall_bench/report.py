"""Numbers and how they are reported: percentiles, timing, machine conditions, PASS/MISS, the
summary and the --json file."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .sql import Database

TARGETS = {
    "recall_at_10": 0.98,
    "service_over_sql": 1.5,
    "api_p50_ms": {"hash": 15.0, "local": 25.0},
    "learn_p50_ms_local": 25.0,
}


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (NaN for no samples)."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def ms_since(start: float) -> float:
    """Milliseconds elapsed since a perf_counter() reading."""
    return (time.perf_counter() - start) * 1000.0


def verdict(ok: bool) -> str:
    """PASS or MISS."""
    return "PASS" if ok else "MISS"


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float:
    """Total RAM in GiB from /proc/meminfo."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return math.nan


def load_average() -> str:
    """The 1/5/15-minute load average."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


@dataclass
class Results:
    """Every number the run produced, with the target verdicts, for the summary and --json."""

    conditions: dict[str, Any] = field(default_factory=dict)
    sizes: dict[int, dict[str, Any]] = field(default_factory=dict)
    verdicts: list[tuple[int, str, str, str, str]] = field(default_factory=list)

    def judge(self, size: int, name: str, value: str, target: str, ok: bool) -> None:
        """Record (and print) one target comparison."""
        self.verdicts.append((size, name, value, target, verdict(ok)))
        print(f"  {verdict(ok)}  {name}: {value} (target {target})")

    def write_json(self, path: str) -> None:
        """Write every number to a file (--json)."""
        Path(path).write_text(
            json.dumps(
                {
                    "conditions": self.conditions,
                    "sizes": self.sizes,
                    "verdicts": self.verdicts,
                },
                indent=1,
                default=str,
            )
        )


def judge_size(results: Results, embedder: str, total: int, report: dict[str, Any]) -> None:
    """Compare this size's numbers with the issue's targets."""
    print(f"\n  targets at N = {total}")
    for name, row in report["buckets"].items():
        results.judge(
            total,
            f"recall@10 {name}",
            f"{row['recall_mean']:.3f} (min {row['recall_min']:.2f})",
            ">= 0.98",
            row["recall_mean"] >= TARGETS["recall_at_10"],
        )
    for name, row in report["buckets"].items():
        results.judge(
            total,
            f"service/SQL p50 {name}",
            f"{row['service_cached_p50']:.2f}/{row['sql_select_p50']:.2f} ms = "
            f"{row['service_over_sql']:.2f}x",
            "<= 1.5x",
            row["service_over_sql"] <= TARGETS["service_over_sql"],
        )
    limit_ms = TARGETS["api_p50_ms"][embedder]  # type: ignore[index]
    for name, row in report.get("api", {}).items():
        results.judge(
            total,
            f"API p50 {name}",
            f"{row['p50']:.2f} ms",
            f"<= {limit_ms} ms" + ("" if total >= 100_000 else " (set for 100k)"),
            row["p50"] <= limit_ms,
        )
    if embedder == "local":
        for slug, row in report["learn"].items():
            results.judge(
                total,
                f"learn p50 {slug} ({row['rows']} rows)",
                f"{row['p50']:.2f} ms",
                "<= 25 ms",
                row["p50"] <= TARGETS["learn_p50_ms_local"],
            )


def record_conditions(
    args: argparse.Namespace, db: Database, embedder: Any, results: Results
) -> dict[str, Any]:
    """Print and record everything the numbers depend on."""
    import django
    import psycopg

    # The cast loads pgvector into this session, which defines its hnsw.* settings.
    version = db.sql(
        "SELECT version(), (SELECT extversion FROM pg_extension "
        "WHERE extname = 'vector'), '[1]'::vector"
    )[0]
    server = {
        name: db.setting(name)
        for name in (
            "shared_buffers",
            "work_mem",
            "effective_cache_size",
            "max_parallel_workers_per_gather",
            "jit",
            "random_page_cost",
            "hnsw.max_scan_tuples",
            "hnsw.scan_mem_multiplier",
        )
    }
    found = {
        "machine": f"{cpu_model()}, os.cpu_count={os.cpu_count()}, usable="
        f"{len(os.sched_getaffinity(0))}, RAM {memory_gib():.1f} GiB",
        "load_average_start": load_average(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "psycopg": psycopg.__version__,
        "postgres": str(version[0]).split(" on ")[0],
        "pgvector": version[1],
        "database": "embedded server under " + str(db.home / "pgdata")
        if not args.database_url
        else "--database-url",
        "server_settings": server,
        "hnsw_indexes": [d.split(" USING ")[1] for d in db.hnsw_indexes().values()],
        "recall_constants": {
            **{name: getattr(db.recall, name) for name in ("CANDIDATE_FACTOR", "MIN_CANDIDATES")},
            **{
                name: getattr(db.search, name)
                for name in ("EXACT_SEARCH_MAX_ROWS", "HNSW_EF_SEARCH")
            },
        },
        "embedder": f"{db.model} ({db.dimensions}-d)"
        + (
            f", onnxruntime intra-op threads {getattr(embedder, 'threads', '?')}"
            if args.embedder == "local"
            else ""
        ),
        "dataset": f"Zipf s={args.zipf} over {args.projects} projects (min 10 "
        "rows), tasks of ~8-16 words from word lists in 12 domains",
    }
    print("conditions")
    for name, value in found.items():
        print(f"  {name:20s} {value}")
    results.conditions.update(found)
    return found


def print_summary(model: str, results: Results) -> None:
    """All target verdicts of the run in one table."""
    print(f"\nsummary ({model}; load average at end {load_average()})")
    for size, name, value, target, outcome in results.verdicts:
        print(f"  N={size:<7d} {outcome}  {name}: {value}  [{target}]")
    results.conditions["load_average_end"] = load_average()
