"""The comparison's output: conditions, the contract's JSON (per-system blocks and Engramia ÷
mem0 ratios), the issue's targets and a readable table."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from typing import Any

from recall_bench.report import cpu_model, load_average, memory_gib

from .common import ROOT

KEYS = ("learn_per_s", "learn_p50_ms", "recall_p50_ms", "recall_p95_ms", "recall_at_10")
# Issue 14's targets, as ratios in the same run.
TARGETS = {"learn": 1.5, "recall_p50": 0.7, "recall_p95": 1.0, "recall_at_10": 0.98, "api_ms": 2.0}


def git_commit() -> str:
    """HEAD, marked when the work tree has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


def machine() -> dict[str, Any]:
    """What the numbers ran on."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "ram_gib": round(memory_gib(), 1),
        "load_average_start": load_average(),
        "python": platform.python_version(),
        "git_commit": git_commit(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def postgres(db: Any) -> dict[str, Any]:
    """The server both systems use."""
    version, vector = db.sql(
        "SELECT version(), (SELECT extversion FROM pg_extension WHERE extname = 'vector')"
    )[0]
    # ALTER SYSTEM (the embedded server sizes shared_buffers so) applies from the next start.
    recorded = db.sql(
        "SELECT setting FROM pg_file_settings WHERE name = 'shared_buffers' "
        "AND sourcefile LIKE '%%postgresql.auto.conf' ORDER BY seqno DESC LIMIT 1"
    )
    return {
        "version": str(version).split(" on ")[0],
        "pgvector": vector,
        "shared_buffers": db.setting("shared_buffers"),
        "shared_buffers_next_start": recorded[0][0] if recorded else None,
        "work_mem": db.setting("work_mem"),
        "maintenance_work_mem": db.setting("maintenance_work_mem"),
        "server": "Engramia's embedded server; Engramia in database 'engramia', mem0 in "
        "'mem0bench' (same server)",
    }


def block(numbers: dict[str, Any] | None) -> dict[str, Any] | None:
    """A system's block: the contract's keys first, extra figures after."""
    if numbers is None:
        return None
    return {key: numbers.get(key) for key in KEYS} | {
        key: value for key, value in numbers.items() if key not in KEYS
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def ratios(engramia: dict[str, Any], mem0: dict[str, Any] | None) -> dict[str, Any] | None:
    """Engramia ÷ mem0 for the same figure in the same run (learn: items per second)."""
    if mem0 is None:
        return None
    return {
        "learn": _ratio(engramia["learn_per_s"], mem0["learn_per_s"]),
        "recall_p50": _ratio(engramia["recall_p50_ms"], mem0["recall_p50_ms"]),
        "recall_p95": _ratio(engramia["recall_p95_ms"], mem0["recall_p95_ms"]),
    }


def targets(document: dict[str, Any]) -> dict[str, Any]:
    """Each of the issue's targets with its value and whether this run met it."""
    engramia, mem0, api = document["engramia"], document["mem0"], document["engramia_api"]
    found: dict[str, Any] = {
        "recall_at_10 >= 0.98": {
            "value": engramia["recall_at_10"],
            "met": engramia["recall_at_10"] >= TARGETS["recall_at_10"],
        }
    }
    if document["ratios"]:
        rates = document["ratios"]
        found["learn ratio >= 1.5"] = {
            "value": rates["learn"],
            "met": rates["learn"] >= TARGETS["learn"],
        }
        found["recall_p50 ratio <= 0.7"] = {
            "value": rates["recall_p50"],
            "met": rates["recall_p50"] <= TARGETS["recall_p50"],
        }
        found["recall_p95 ratio <= 1.0"] = {
            "value": rates["recall_p95"],
            "met": rates["recall_p95"] <= TARGETS["recall_p95"],
        }
        found["recall_at_10 >= mem0's"] = {
            "value": [engramia["recall_at_10"], mem0["recall_at_10"]],
            "met": engramia["recall_at_10"] >= mem0["recall_at_10"],
        }
    if api:
        delta = api["recall_p50_ms"] - engramia["recall_p50_ms"]
        found["API recall p50 - local p50 <= 2 ms"] = {
            "value": delta,
            "met": delta <= TARGETS["api_ms"],
        }
    return found


def table(document: dict[str, Any]) -> str:
    """The blocks side by side, the ratios and the targets, for a reader."""
    columns = [
        (name, document[name])
        for name in ("engramia", "engramia_api", "mem0")
        if document.get(name)
    ]
    lines = [f"{'':24s}" + "".join(f"{name:>16s}" for name, _ in columns)]
    for key in KEYS:
        cells = "".join(
            f"{values[key]:16.3f}" if values.get(key) is not None else f"{'-':>16s}"
            for _, values in columns
        )
        lines.append(f"{key:24s}{cells}")
    if document["ratios"]:
        lines.append(
            "ratios Engramia/mem0: "
            + ", ".join(f"{key} {value:.2f}" for key, value in document["ratios"].items())
        )
    for name, verdict in document["targets"].items():
        lines.append(f"  {'MET ' if verdict['met'] else 'MISS'}  {name}: {verdict['value']}")
    return "\n".join(lines)


def conditions(
    args: argparse.Namespace, layout: dict[str, Any], base: dict[str, Any]
) -> dict[str, Any]:
    """The run's conditions: workload, embedder, server, machine, how each system ran."""
    return {
        "dataset": {
            "n": args.n,
            "projects": args.projects,
            "zipf": args.zipf if args.projects > 1 else None,
            "layout": layout,
            "preload": args.preload,
            "learned_one_at_a_time": args.n - args.preload,
            "queries": args.queries,
            "seed": args.seed,
            "tasks": "recall bench word lists: 8-16-word agent tasks in 12 domains, unique per "
            "project; learned in a seeded shuffled order (projects interleaved)",
            "query_texts": "paraphrases of stored tasks (synonym swaps, a dropped word, a "
            "prefix), drawn uniformly over items, so traffic follows project size",
            "recall_at_10": "against exact cosine search (numpy) over the items the system "
            "stored in the query's project; ties with the 10th distance count",
        },
        "embedder": "Engramia's HashEmbedder hash:384 (word unigrams + char trigrams), the "
        "same code in both systems",
        **base,
    }
