"""bench/compare.py end to end at a tiny size (Engramia only: mem0 needs its own virtualenv).

Checks the shape of the contract's JSON, not the speed: no timing is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

KEYS = {"learn_per_s", "learn_p50_ms", "recall_p50_ms", "recall_p95_ms", "recall_at_10"}


@pytest.fixture(scope="module")
def document() -> dict:
    """One small run in a data dir of its own (kept between runs: initdb once)."""
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "compare.py"),
            "--n",
            "120",
            "--projects",
            "3",
            "--queries",
            "12",
            "--skip-mem0",
            "--skip-api",
            "--json",
            "--home",
            str(ROOT / ".engramia-test" / "bench-compare"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout)


def test_prints_the_contract_document(document: dict) -> None:
    assert set(document) >= {"conditions", "engramia", "mem0", "ratios", "engramia_api"}
    assert set(document["engramia"]) >= KEYS
    assert document["mem0"] is None and document["ratios"] is None
    assert document["engramia_api"] is None
    conditions = document["conditions"]
    assert conditions["dataset"]["n"] == 120 and conditions["dataset"]["projects"] == 3
    assert conditions["postgres"]["version"].startswith("PostgreSQL")
    assert conditions["machine"]["cores"] >= 1


def test_learns_every_item_and_recalls_them(document: dict) -> None:
    engramia = document["engramia"]
    assert engramia["learned"] == 120
    assert document["conditions"]["engramia"]["skipped_as_duplicates"] == 0
    # Three small projects are searched exactly: every query finds its true top 10.
    assert engramia["recall_at_10"] == 1.0
    assert engramia["learn_per_s"] > 0 and engramia["recall_p95_ms"] >= engramia["recall_p50_ms"]


def test_ratios_are_engramia_over_mem0() -> None:
    from compare_bench.report import ratios

    engramia = {"learn_per_s": 300.0, "recall_p50_ms": 2.0, "recall_p95_ms": 3.0}
    mem0 = {"learn_per_s": 200.0, "recall_p50_ms": 4.0, "recall_p95_ms": 6.0}
    assert ratios(engramia, mem0) == {"learn": 1.5, "recall_p50": 0.5, "recall_p95": 0.5}
    assert ratios(engramia, None) is None


def test_workload_is_deterministic_and_paraphrases_stored_tasks() -> None:
    from compare_bench.workload import build

    first = build(n=200, projects=4, zipf=1.0, seed=7, learn=50, queries=20)
    again = build(n=200, projects=4, zipf=1.0, seed=7, learn=50, queries=20)
    assert first.items == again.items and first.queries == again.queries
    assert first.preload == 150 and len(first.learned) == 50
    tasks = {(item.project, item.task) for item in first.items}
    assert len(tasks) == 200  # unique within each project: learn skips none as duplicates
    pairs = [(query, first.items[query.source]) for query in first.queries]
    assert all(query.project == source.project for query, source in pairs)
    reworded = [query for query, source in pairs if query.text != source.task]
    assert len(reworded) >= len(first.queries) // 2
