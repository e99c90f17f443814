"""The workload both systems get: seeded synthetic agent tasks over Zipf-sized projects (the
recall bench's word lists and layout), a learn order, paraphrased recall queries, the files
the mem0 subprocess reads, and exact truth for recall@10."""

from __future__ import annotations

import argparse
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recall_bench.dataset import ProjectSpec, code_text, project_specs, task_text
from recall_bench.sql import recall_at

from .common import LIMIT

WARMUP_QUERIES = 20
# Paraphrases swap a few words for near-synonyms the word lists do not use, so a query is close
# to its source task without repeating it.
SYNONYMS = {
    "fix": "repair",
    "parse": "read",
    "validate": "check",
    "retry": "try again",
    "summarise": "sum up",
    "deploy": "roll out",
    "export": "dump",
    "import": "load",
    "schedule": "plan",
    "monitor": "watch",
    "debug": "troubleshoot",
    "sort": "order",
    "merge": "combine",
    "split": "break up",
    "generate": "create",
    "review": "look over",
    "sync": "synchronise",
    "notify": "alert",
    "failed": "unsuccessful",
    "stale": "outdated",
    "large": "big",
    "broken": "faulty",
    "urgent": "high-priority",
    "slow": "sluggish",
    "missing": "absent",
    "legacy": "old",
    "empty": "blank",
    "records": "entries",
    "script": "small program",
    "every": "each",
}
PREFIXES = ("", "", "", "please ", "I need to ", "can you ", "help me ")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Item:
    """One pattern to store: its project (slug), task and code."""

    project: str
    task: str
    code: str


@dataclass(frozen=True)
class Query:
    """One recall: the project, the query text and the item it paraphrases."""

    project: str
    text: str
    source: int


@dataclass
class Workload:
    """Items in learn order (the first `preload` are bulk-loaded), queries and the layout."""

    specs: list[ProjectSpec]
    items: list[Item]
    preload: int
    queries: list[Query]
    warmup: list[Query]

    @property
    def learned(self) -> list[Item]:
        """The items learned one at a time (timed)."""
        return self.items[self.preload :]

    def index(self) -> dict[tuple[str, str], int]:
        """(project, task) → item index (tasks are unique within a project)."""
        return {(item.project, item.task): i for i, item in enumerate(self.items)}

    def layout(self) -> dict[str, Any]:
        """Project sizes as a summary for the conditions."""
        sizes = sorted((spec.size for spec in self.specs), reverse=True)
        return {
            "projects": len(sizes),
            "largest": sizes[:3],
            "median": sizes[len(sizes) // 2],
            "smallest": sizes[-1],
        }


def _key(text: str) -> str:
    return _SPACE.sub(" ", text.casefold()).strip()


def project_items(spec: ProjectSpec, seed: int, label: str = "rows") -> list[Item]:
    """spec.size distinct tasks of the project (the recall bench's text stream, repeats
    skipped so no item is a duplicate that learn would refuse)."""
    rng = random.Random(f"{seed}:{label}:{spec.rank}")
    seen: set[str] = set()
    items: list[Item] = []
    attempts = 0
    while len(items) < spec.size:
        attempts += 1
        text = task_text(rng, spec)
        if attempts > 20 * spec.size:  # the word lists ran out of combinations
            text = f"{text} (variant {attempts})"
        if _key(text) in seen:
            continue
        seen.add(_key(text))
        items.append(Item(spec.slug, text, code_text(text)))
    return items


def paraphrase(rng: random.Random, text: str) -> str:
    """A query a user might type for this task: a synonym or two, maybe a word dropped."""
    words = text.split()
    swaps = [i for i, word in enumerate(words) if word.lower() in SYNONYMS]
    for i in rng.sample(swaps, min(len(swaps), 2)):
        words[i] = SYNONYMS[words[i].lower()]
    if len(words) > 6 and rng.random() < 0.5:
        del words[rng.randrange(3, len(words))]
    return (rng.choice(PREFIXES) + " ".join(words)).strip()


def build(
    *,
    n: int,
    projects: int,
    zipf: float,
    seed: int,
    learn: int,
    queries: int,
) -> Workload:
    """The whole workload, deterministic for the arguments."""
    layout = argparse.Namespace(projects=projects, zipf=zipf, seed=seed)
    specs = project_specs(n, layout)
    items = [item for spec in specs for item in project_items(spec, seed)]
    # Interleave projects, as traffic from many agents would arrive.
    random.Random(f"{seed}:order").shuffle(items)
    learn = min(learn, len(items)) if learn > 0 else len(items)

    def draw(count: int, label: str) -> list[Query]:
        rng = random.Random(f"{seed}:{label}")
        picks = [rng.randrange(len(items)) for _ in range(count)]
        return [Query(items[i].project, paraphrase(rng, items[i].task), i) for i in picks]

    return Workload(
        specs, items, len(items) - learn, draw(queries, "queries"), draw(WARMUP_QUERIES, "warm")
    )


def extra_items(workload: Workload, count: int, seed: int) -> list[Item]:
    """Fresh items (not in the workload) for the HTTP learn measurement, spread like it."""
    known = {(item.project, _key(item.task)) for item in workload.items}
    rng = random.Random(f"{seed}:api-learn")
    by_slug = {spec.slug: spec for spec in workload.specs}
    extra: list[Item] = []
    while len(extra) < count:
        spec = by_slug[workload.items[rng.randrange(len(workload.items))].project]
        text = f"{task_text(rng, spec)} (via the API)"
        if (spec.slug, _key(text)) in known:
            continue
        known.add((spec.slug, _key(text)))
        extra.append(Item(spec.slug, text, code_text(text)))
    return extra


# --- files for the mem0 subprocess ----------------------------------------------------------


def write_files(workload: Workload, vectors: Any, directory: Path) -> dict[str, str]:
    """Items, their vectors and the queries on disk: the subprocess reads the same workload."""
    import numpy as np

    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "items": str(directory / "items.json"),
        "vectors": str(directory / "vectors.npy"),
        "queries": str(directory / "queries.json"),
    }
    Path(files["items"]).write_text(
        json.dumps([[item.project, item.task, item.code] for item in workload.items])
    )
    np.save(files["vectors"], vectors)
    Path(files["queries"]).write_text(
        json.dumps(
            {
                "queries": [[q.project, q.text] for q in workload.queries],
                "warmup": [[q.project, q.text] for q in workload.warmup],
            }
        )
    )
    return files


# --- exact truth -----------------------------------------------------------------------------


class Truth:
    """Exact nearest items of a project for a query, by brute force over the stored vectors."""

    def __init__(self, workload: Workload, vectors: Any, embedder: Any) -> None:
        import numpy as np

        self.np = np
        self.workload = workload
        self.vectors = vectors
        self.embedder = embedder
        self.members: dict[str, Any] = {}
        for i, item in enumerate(workload.items):
            self.members.setdefault(item.project, []).append(i)
        self.members = {slug: np.asarray(ids) for slug, ids in self.members.items()}
        self.query_vectors = np.asarray(
            [embedder.embed_documents([q.text])[0] for q in workload.queries], dtype=np.float32
        )
        self.index = workload.index()
        self.cache: dict[tuple[int, int], list[tuple[int, float]]] = {}

    def nearest(self, query: int, stored: Any = None) -> list[tuple[int, float]]:
        """(item, cosine distance) of the 50 nearest stored items of the query's project."""
        # Scored again for each system and ef_search of a run: ~0.1 s a query at 100k rows.
        key = (query, 0 if stored is None else hash(stored.tobytes()))
        if key not in self.cache:
            self.cache[key] = self._nearest(query, stored)
        return self.cache[key]

    def _nearest(self, query: int, stored: Any) -> list[tuple[int, float]]:
        np = self.np
        members = self.members[self.workload.queries[query].project]
        if stored is not None:
            members = members[stored[members]]
        distances = 1.0 - self.vectors[members] @ self.query_vectors[query]
        top = np.argsort(distances, kind="stable")[:50]
        return [(int(members[i]), float(distances[i])) for i in top]

    def recall_at_10(self, found: list[list[str]], stored: Any = None) -> dict[str, float]:
        """Mean and minimum recall@10 of the returned tasks (per query) against exact search;
        `stored` masks the items a system refused (duplicates it skipped)."""
        scores = []
        for query, tasks in enumerate(found):
            project = self.workload.queries[query].project
            ids = [self.index.get((project, task), -1) for task in tasks[:LIMIT]]
            scores.append(recall_at(self.nearest(query, stored), ids, LIMIT))
        return {
            "recall_at_10": sum(scores) / len(scores) if scores else float("nan"),
            "recall_at_10_min": min(scores, default=float("nan")),
        }
