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
import gc
import json
import math
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TENANT = "bench"
BULK_PROJECT = "bulk-import"
KEY_NAME = "bench-recall"
LIMIT = 10
EF_SWEEP = (40, 100, 200, 400)
# A perturbed copy of a real vector: noise of this norm before re-normalising (cosine ≈ 0.89
# to the original, about what a paraphrase scores with MiniLM).
PERTURBATION = 0.5
TARGETS = {
    "recall_at_10": 0.98,
    "service_over_sql": 1.5,
    "api_p50_ms": {"hash": 15.0, "local": 25.0},
    "learn_p50_ms_local": 25.0,
}

# --- texts ------------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    """Split a "|"-separated word list."""
    return text.split("|")


DOMAINS: dict[str, list[str]] = {
    "billing": _words(
        "invoice|payment|refund|subscription|charge|webhook|coupon|tax rate|payout|"
        "dunning email|credit note|price plan"
    ),
    "devops": _words(
        "deployment|container image|cluster|pipeline|rollback|TLS certificate|load balancer|"
        "helm chart|cron job|log stream|alert rule|disk quota"
    ),
    "data": _words(
        "CSV export|dataframe|parquet file|SQL query|schema migration|join|daily aggregate|"
        "dashboard|ETL job|column type|null value|duplicate row"
    ),
    "support": _words(
        "support ticket|customer reply|escalation|complaint|survey|chat transcript|"
        "refund request|help article|macro|SLA breach|handover note|priority tag"
    ),
    "auth": _words(
        "login|session token|password reset|OAuth callback|API key|role check|2FA code|"
        "SSO assertion|JWT|permission|invite link|audit log"
    ),
    "email": _words(
        "newsletter|bounce|unsubscribe link|template|SMTP relay|attachment|mailing list|"
        "spam score|reply thread|digest|calendar invite|signature"
    ),
    "search": _words(
        "search index|ranking|synonym list|autocomplete|facet|query log|embedding|"
        "typo tolerance|relevance score|stop word|reindex job|filter"
    ),
    "ml": _words(
        "training run|feature|model checkpoint|evaluation set|learning rate|label|"
        "confusion matrix|prompt|batch size|inference endpoint|drift report|tokenizer"
    ),
    "mobile": _words(
        "push notification|app release|crash report|deep link|offline cache|in-app purchase|"
        "screen|permission dialog|build|beta tester|font size|dark mode"
    ),
    "docs": _words(
        "README|changelog|API reference|tutorial|code sample|diagram|release note|broken link|"
        "style guide|translation|docstring|FAQ"
    ),
    "logistics": _words(
        "shipment|tracking number|warehouse|delivery slot|return label|carrier|customs form|"
        "pallet|route|stock level|pick list|address"
    ),
    "hr": _words(
        "job posting|candidate|interview|offer letter|onboarding checklist|payroll run|"
        "leave request|timesheet|performance review|contract|benefit plan|org chart"
    ),
}
VERBS = _words(
    "parse|validate|retry|summarise|migrate|deploy|fix|refactor|cache|paginate|export|import|"
    "schedule|deduplicate|rename|archive|translate|monitor|debug|test|sort|filter|merge|split|"
    "encrypt|compress|backfill|audit|rate-limit|normalise|batch|index|clean up|reconcile|"
    "generate|review|classify|extract|sync|notify"
)
ADJECTIVES = _words(
    "failed|stale|duplicate|large|nightly|legacy|missing|urgent|partial|encrypted|pending|new|"
    "expired|broken|slow|weekly|unpaid|flaky|empty|shared"
)
TOOLS = _words(
    "Stripe|Postgres|Redis|S3|Slack|GitHub|Jira|Kafka|Salesforce|Zendesk|BigQuery|Kubernetes|"
    "Twilio|Shopify|HubSpot|Sentry"
)
PERIODS = _words("hour|night|Monday|quarter|sprint|day")
QUALIFIERS = _words(
    "after a rate limit|in batches of {n}|for the EU region|without downtime|"
    "using the {tool} API|when the {noun} is missing|every {period}|for enterprise customers|"
    "before the end of the month|with exponential backoff|from the {tool} webhook|"
    "in under {n} seconds|for {n} users|and log the result|when {tool} times out|"
    "with a dry run first|across all workspaces|for the mobile app|in the staging environment|"
    "and send a summary to {tool}"
)
TEMPLATES = _words(
    "{verb} the {adj} {noun} {qual}|how to {verb} {adj} {noun} records {qual}|"
    "{verb} each {noun} and {verb2} the {noun2} {qual}|why does the {adj} {noun} fail {qual}|"
    "{verb} {noun} data from {tool} {qual}|write a script to {verb} the {noun2} {qual}"
)


@dataclass
class ProjectSpec:
    """One seeded project: its slug, Zipf rank, size, domain and favourite tools."""

    slug: str
    rank: int
    size: int
    domain: str
    tools: list[str]


def task_text(rng: random.Random, spec: ProjectSpec) -> str:
    """A short agent task in the project's domain, built from the word lists."""
    nouns = DOMAINS[spec.domain]
    tool = rng.choice(spec.tools) if rng.random() < 0.7 else rng.choice(TOOLS)
    noun = rng.choice(nouns)
    qualifier = rng.choice(QUALIFIERS).format(
        n=rng.choice([5, 10, 50, 100, 500, 1000]),
        tool=tool,
        noun=rng.choice(nouns),
        period=rng.choice(PERIODS),
    )
    return rng.choice(TEMPLATES).format(
        verb=rng.choice(VERBS),
        verb2=rng.choice(VERBS),
        adj=rng.choice(ADJECTIVES),
        noun=noun,
        noun2=rng.choice(nouns),
        tool=tool,
        qual=qualifier,
    )


def code_text(task: str) -> str:
    """A plausible stored solution (a few hundred characters)."""
    name = "_".join(task.lower().split()[:4]).replace("-", "_")
    return (
        f'def {name}(items, *, client):\n    """{task}."""\n    done = []\n'
        "    for item in items:\n        if not item:\n            continue\n"
        "        done.append(client.handle(item, retries=3))\n    return done\n"
    )


def zipf_sizes(total: int, projects: int, exponent: float, minimum: int = 10) -> list[int]:
    """Project sizes proportional to rank^-exponent, at least `minimum`, summing to total."""
    weights = [rank**-exponent for rank in range(1, projects + 1)]
    scale = total / sum(weights)
    sizes = [max(minimum, round(weight * scale)) for weight in weights]
    sizes[0] += total - sum(sizes)
    return sizes


def project_specs(total: int, args: argparse.Namespace) -> list[ProjectSpec]:
    """The skewed project layout for one table size (deterministic for a seed)."""
    specs = []
    for rank, size in enumerate(zipf_sizes(total, args.projects, args.zipf), start=1):
        rng = random.Random(f"{args.seed}:project:{rank}")
        specs.append(
            ProjectSpec(
                f"p{rank:03d}", rank, size, rng.choice(sorted(DOMAINS)), rng.sample(TOOLS, 2)
            )
        )
    return specs


def query_texts(spec: ProjectSpec, count: int, seed: int) -> list[str]:
    """Fresh tasks for a project (a stream separate from the seeded rows)."""
    rng = random.Random(f"{seed}:query:{spec.rank}")
    return [task_text(rng, spec) for _ in range(count)]


# --- measurement helpers -----------------------------------------------------------------------


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


# --- the bench ----------------------------------------------------------------------------------


def configure(args: argparse.Namespace) -> None:
    """Point Django at the bench's own data dir and database, then set it up."""
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    os.environ["DJANGO_SETTINGS_MODULE"] = "engramia_site.settings"
    os.environ["ENGRAMIA_HOME"] = str(Path(args.home).resolve())
    os.environ["ENGRAMIA_EMBEDDINGS"] = args.embedder
    os.environ.setdefault("ENGRAMIA_LOG_LEVEL", "WARNING")
    # Never inherit a dev or production database: only an explicit --database-url is used.
    os.environ.pop("ENGRAMIA_DATABASE_URL", None)
    if args.database_url:
        os.environ["ENGRAMIA_DATABASE_URL"] = args.database_url
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import django

    django.setup()


class Bench:
    """One run: a database, a tenant of skewed projects, an API server, and the measurements."""

    def __init__(self, args: argparse.Namespace) -> None:
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection

        from memory.providers.embeddings import get_embedder
        from memory.services import recall as recall_module

        self.args = args
        self.settings = settings
        self.connection = connection
        self.recall = recall_module
        self.results = Results()
        self.home = Path(args.home).resolve()
        call_command("migrate", interactive=False, verbosity=0)
        self._restore_indexes()
        self.embedder = get_embedder(args.embedder)
        self.model = self.embedder.name
        self.dimensions = self.embedder.dimensions
        self.server: subprocess.Popen[bytes] | None = None
        self.port = 0

    # -- database plumbing --

    def sql(self, statement: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows (empty when it returns none)."""
        with self.connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def setting(self, name: str) -> str:
        """A server setting (SHOW)."""
        return str(self.sql(f"SHOW {name}")[0][0])

    def hnsw_indexes(self) -> dict[str, str]:
        """Name → definition of the HNSW indexes on memory_pattern."""
        rows = self.sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'memory_pattern' "
            "AND indexdef ILIKE '%USING hnsw%' ORDER BY indexname"
        )
        return dict(rows)  # type: ignore[arg-type]

    @property
    def _index_file(self) -> Path:
        return self.home / "dropped_hnsw_indexes.json"

    def _restore_indexes(self) -> None:
        """Recreate indexes a previous run dropped for loading and did not get to rebuild."""
        if not self._index_file.exists():
            return
        present = self.hnsw_indexes()
        for name, definition in json.loads(self._index_file.read_text()).items():
            if name not in present:
                print(f"restoring index {name} dropped by an interrupted run")
                self.sql(definition)
        self._index_file.unlink()

    # -- seeding --

    def vectors_for(self, texts: list[str], domains: list[str]) -> tuple[list[str], Any]:
        """Vectors for the rows (and the texts actually stored), embedding as the model allows."""
        import numpy as np

        if self.args.embedder == "hash":
            started = time.perf_counter()
            vectors = np.asarray(self.embedder.embed_documents(texts), dtype=np.float32)
            print(
                f"  embedded {len(texts)} texts with {self.model} in "
                f"{time.perf_counter() - started:.1f} s"
            )
            return texts, vectors
        return self._local_vectors(texts, domains)

    def _local_vectors(self, texts: list[str], domains: list[str]) -> tuple[list[str], Any]:
        """Real MiniLM vectors for up to --local-unique texts (cached on disk); the other rows
        copy a same-domain embedded row with a perturbed vector."""
        import numpy as np

        cache_file = self.home / "vectors" / f"{self.model.replace(':', '_')}.npz"
        cache: dict[str, Any] = {}
        if cache_file.exists():
            stored = np.load(cache_file)
            cache = dict(zip(stored["texts"].tolist(), stored["vectors"], strict=True))
        unique = list(dict.fromkeys(texts))
        rng = random.Random(f"{self.args.seed}:unique")
        budget = self.args.local_unique or len(unique)
        chosen = set(unique if len(unique) <= budget else rng.sample(unique, budget))
        missing = [text for text in unique if text in chosen and text not in cache]
        if missing:
            started = time.perf_counter()
            for offset in range(0, len(missing), 1024):
                batch = missing[offset : offset + 1024]
                for text, vector in zip(batch, self.embedder.embed_documents(batch), strict=True):
                    cache[text] = np.asarray(vector, dtype=np.float32)
                done = offset + len(batch)
                rate = done / (time.perf_counter() - started)
                print(f"  embedding {done}/{len(missing)} ({rate:.0f} texts/s)", end="\r")
            print(
                f"\n  embedded {len(missing)} new texts in {time.perf_counter() - started:.0f} s"
                f" ({len(missing) / (time.perf_counter() - started):.0f} texts/s)"
            )
            cache_file.parent.mkdir(exist_ok=True)
            names = list(cache)
            np.savez(
                cache_file, texts=np.array(names), vectors=np.stack([cache[name] for name in names])
            )
        pools: dict[str, list[str]] = {}
        for text, domain in zip(texts, domains, strict=True):
            if text in chosen:
                pools.setdefault(domain, []).append(text)
        noise = np.random.default_rng(self.args.seed)
        stored_texts, vectors, copies = [], np.empty((len(texts), self.dimensions), np.float32), 0
        for row, (text, domain) in enumerate(zip(texts, domains, strict=True)):
            if text in chosen:
                stored_texts.append(text)
                vectors[row] = cache[text]
                continue
            source = rng.choice(pools[domain])
            jitter = noise.standard_normal(self.dimensions).astype(np.float32)
            vector = cache[source] + PERTURBATION * jitter / np.linalg.norm(jitter)
            stored_texts.append(source)
            vectors[row] = vector / np.linalg.norm(vector)
            copies += 1
        self.results.conditions.setdefault("local_vectors", {})[len(texts)] = {
            "real": len(texts) - copies,
            "perturbed_copies": copies,
        }
        if copies:
            print(
                f"  {len(texts) - copies} rows with real vectors, {copies} perturbed copies "
                f"of same-domain rows (noise norm {PERTURBATION})"
            )
        return stored_texts, vectors

    def seed(self, total: int, specs: list[ProjectSpec]) -> dict[str, Any]:
        """Empty the patterns table and load `total` rows: COPY with the HNSW index dropped,
        then rebuild it (the load-then-index path of large imports)."""
        from memory.services.embedding import task_hash
        from tenants.models import Project, Tenant
        from tenants.services import ensure_project

        args = self.args
        projects = {spec.slug: ensure_project(TENANT, spec.slug) for spec in specs}
        Project.objects.filter(tenant__slug=TENANT).update(embedding_model=self.model)
        for project in projects.values():
            project.embedding_model = self.model
        self.projects = projects
        # The tenant's name records which dataset the table holds, for --reuse.
        fingerprint = (
            f"bench N={total} model={self.model} projects={args.projects} "
            f"zipf={args.zipf} seed={args.seed} unique={args.local_unique}"
        )
        tenant = Tenant.objects.get(slug=TENANT)
        count = self.sql("SELECT count(*) FROM memory_pattern")[0][0]
        if args.reuse and tenant.name == fingerprint and count == total:
            print("  --reuse: the table already holds this dataset; not reseeding")
            return {"reused": True, **self.sync_project_indexes()}
        Tenant.objects.filter(pk=tenant.pk).update(name="bench (seeding)")

        rows: list[tuple[int, str]] = []
        texts: list[str] = []
        for spec in specs:
            rng = random.Random(f"{args.seed}:rows:{spec.rank}")
            for _ in range(spec.size):
                rows.append((projects[spec.slug].pk, spec.domain))
                texts.append(task_text(rng, spec))
        stored, vectors = self.vectors_for(texts, [domain for _, domain in rows])

        timings: dict[str, Any] = {}
        self.sql("TRUNCATE memory_pattern CASCADE")
        from memory.services.indexes import PROJECT_INDEX_PREFIX

        indexes = self.hnsw_indexes()
        # Projects' own indexes are rebuilt by sync_project_indexes below, as in production.
        for name in [name for name in indexes if name.startswith(PROJECT_INDEX_PREFIX)]:
            self.sql(f"DROP INDEX {name}")
            del indexes[name]
        self._index_file.write_text(json.dumps(indexes))
        for name in indexes:
            self.sql(f"DROP INDEX {name}")
        started = time.perf_counter()
        vector_format = "[" + ",".join(["%.6g"] * self.dimensions) + "]"
        clock = random.Random(f"{self.args.seed}:time")
        now = time.time()
        columns = (
            "project_id, task, code, output, source, run_id, metadata, created_at, "
            "learned_at, updated_at, archived, task_hash, embedding, embedding_model, "
            "eval_count"
        )
        raw = self.connection.connection
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY memory_pattern ({columns}) FROM STDIN") as copy,
        ):
            for (project_id, _), text, vector in zip(rows, stored, vectors, strict=True):
                moment = time.strftime(
                    "%Y-%m-%d %H:%M:%S+00", time.gmtime(now - clock.uniform(0, 365 * 86400))
                )
                copy.write_row(
                    (
                        project_id,
                        text,
                        code_text(text),
                        "ok",
                        "import",
                        "",
                        "{}",
                        moment,
                        moment,
                        moment,
                        False,
                        task_hash(text),
                        vector_format % tuple(vector.tolist()),
                        self.model,
                        0,
                    )
                )
        if not raw.autocommit:
            raw.commit()
        timings["copy_s"] = time.perf_counter() - started
        started = time.perf_counter()
        with self.connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '1GB'")
            for definition in indexes.values():
                cursor.execute(definition)
            cursor.execute("RESET maintenance_work_mem")
        self._index_file.unlink()
        timings["index_s"] = time.perf_counter() - started
        started = time.perf_counter()
        self.sql("VACUUM ANALYZE memory_pattern")
        timings["vacuum_analyze_s"] = time.perf_counter() - started
        count = self.sql("SELECT count(*) FROM memory_pattern")[0][0]
        assert count == total, (count, total)
        Tenant.objects.filter(pk=tenant.pk).update(name=fingerprint)
        print(
            f"  COPY {total} rows {timings['copy_s']:.1f} s, HNSW build "
            f"{timings['index_s']:.1f} s (maintenance_work_mem 1GB), VACUUM ANALYZE "
            f"{timings['vacuum_analyze_s']:.1f} s"
        )
        timings.update(self.sync_project_indexes())
        return timings

    def sync_project_indexes(self) -> dict[str, Any]:
        """Give projects above the exact-search size their own index (memory.services.indexes)."""
        from memory.services.indexes import sync_project_indexes

        started = time.perf_counter()
        report = sync_project_indexes()
        elapsed = time.perf_counter() - started
        if report.created or report.dropped:
            print(
                f"  project indexes (sync_project_indexes): built {len(report.created)}, dropped "
                f"{len(report.dropped)}, kept {len(report.kept)} in {elapsed:.1f} s"
            )
        return {"project_indexes": report.to_dict(), "project_index_s": elapsed}

    # -- query building and replay --

    def candidates_sql(self, project: Any, vector: list[float], *, hnsw: bool) -> tuple[str, Any]:
        """recall.py's own statement: its exact search alone, or its HNSW branch.

        The exact statement is the one recall.py uses for a model without an index (no size
        probe); threshold -1 sends any scope to the HNSW branch (its probe reads no row).
        """
        window = max(self.recall.MIN_CANDIDATES, LIMIT * self.recall.CANDIDATE_FACTOR)
        sql = self.recall.search_statement(self.dimensions if hnsw else None, False)
        return sql, self.recall.search_params(project.pk, self.model, vector, window, threshold=-1)

    def run_candidates(
        self,
        project: Any,
        vector: list[float],
        *,
        hnsw: bool,
        ef_search: int | None = None,
        force: bool = False,
        explain: bool = False,
    ) -> tuple[float, list[int], str]:
        """Time one candidate query (ms); return the ids nearest first and the plan's path.

        hnsw=True issues the service's HNSW-path SQL, where the planner may still pick the
        project index; force=True forbids the sort so only the HNSW index can give the order.
        """
        from django.db import transaction

        sql, params = self.candidates_sql(project, vector, hnsw=hnsw)
        path = ""
        with transaction.atomic(), self.connection.cursor() as cursor:
            if hnsw:
                window = max(self.recall.MIN_CANDIDATES, LIMIT * self.recall.CANDIDATE_FACTOR)
                ef = ef_search or self.recall.HNSW_EF_SEARCH
                cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                cursor.execute(f"SET LOCAL hnsw.ef_search = {max(ef, window)}")
                if force:
                    cursor.execute("SET LOCAL enable_sort = off")
            if explain:
                cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
                plan = json.dumps(cursor.fetchone()[0])
                path = "hnsw" if "pattern_hnsw_" in plan else "exact"
            started = time.perf_counter()
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            elapsed = ms_since(started)
        distance_at = len(rows[0]) - 2 if rows else 0  # (..., distance, strategy)
        # relaxed_order may return a page slightly out of order; the service re-sorts too.
        ordered = sorted(rows, key=lambda row: row[distance_at])
        return elapsed, [row[0] for row in ordered], path

    def exact_truth(
        self, project: Any, vector: list[float]
    ) -> tuple[float, list[tuple[int, float]]]:
        """Exact nearest rows (id, distance) of the project, and the time it took (ms)."""
        literal = "[" + ",".join(repr(x) for x in vector) + "]"
        started = time.perf_counter()
        rows = self.sql(
            "SELECT id, embedding <=> %s::vector AS distance FROM memory_pattern "
            "WHERE project_id = %s AND archived = false AND embedding_model = %s "
            "ORDER BY distance LIMIT 50",
            [literal, project.pk, self.model],
        )
        return ms_since(started), [(row[0], float(row[1])) for row in rows]

    @staticmethod
    def recall_at(truth: list[tuple[int, float]], found: Sequence[int], k: int = LIMIT) -> float:
        """Share of the true top-k found, counting rows tied with the k-th distance as true."""
        if not truth:
            return 1.0
        k = min(k, len(truth))
        # Ranking clamps similarity at 0, so every row at distance >= 1 ties with the others.
        cutoff = min(1.0, truth[k - 1][1]) + 1e-6
        correct = {pk for pk, distance in truth if min(1.0, distance) <= cutoff}
        return min(k, len(correct.intersection(found[:k]))) / k

    def replay(self, statements: list[tuple[str, Any]]) -> tuple[float, float]:
        """Run the service's statements again as raw SQL: (final SELECT ms, all statements ms)."""
        from django.db import transaction

        split = next(
            (i for i, (sql, _) in enumerate(statements) if sql.startswith("SET LOCAL")),
            len(statements),
        )
        started = time.perf_counter()
        select_ms = 0.0
        with self.connection.cursor() as cursor:
            for sql, params in statements[:split]:
                begin = time.perf_counter()
                cursor.execute(sql, params)
                cursor.fetchall()
                select_ms = ms_since(begin)
        if split < len(statements):
            with transaction.atomic(), self.connection.cursor() as cursor:
                for sql, params in statements[split:]:
                    begin = time.perf_counter()
                    cursor.execute(sql, params)
                    if cursor.description:
                        cursor.fetchall()
                    select_ms = ms_since(begin)
        return select_ms, ms_since(started)

    def explain(self, statements: list[tuple[str, Any]]) -> dict[str, Any]:
        """EXPLAIN ANALYZE of the service's final SELECT under the same SET LOCALs."""
        from django.db import transaction

        *settings_statements, (select, params) = statements
        with transaction.atomic(), self.connection.cursor() as cursor:
            for sql, statement_params in settings_statements:
                if sql.startswith("SET LOCAL"):
                    cursor.execute(sql, statement_params)
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {select}", params)
            document = cursor.fetchone()[0]
        plan = document[0] if isinstance(document, list) else json.loads(document)[0]
        indexes: list[str] = []

        def walk(node: dict[str, Any]) -> None:
            if "Index Name" in node:
                indexes.append(f"{node['Node Type']} {node['Index Name']}")
            for child in node.get("Plans", []):
                walk(child)

        walk(plan["Plan"])
        return {
            "execution_ms": plan["Execution Time"],
            "planning_ms": plan["Planning Time"],
            "indexes": indexes or [plan["Plan"]["Node Type"]],
            "jit": "JIT" in plan,
        }

    # -- sizes and buckets --

    def buckets(self, specs: list[ProjectSpec]) -> dict[str, list[ProjectSpec]]:
        """Projects grouped by size; up to --per-bucket each, spread over the bucket's range."""
        threshold = self.recall.EXACT_SEARCH_MAX_ROWS
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
            "above_threshold": sum(1 for s in sizes if s > self.recall.EXACT_SEARCH_MAX_ROWS),
            "rows_in_projects_above_threshold": sum(
                s for s in sizes if s > self.recall.EXACT_SEARCH_MAX_ROWS
            ),
        }
        print(
            f"  projects {layout['projects']} (Zipf s={args.zipf}): largest {layout['largest']}"
            f" ({layout['largest_share']:.0%} of the table), median {layout['median']}, "
            f"smallest {layout['smallest']}; {layout['above_threshold']} above "
            f"EXACT_SEARCH_MAX_ROWS={self.recall.EXACT_SEARCH_MAX_ROWS}"
        )
        report: dict[str, Any] = {"layout": layout, "load_average_start": load_average()}
        self.results.sizes[total] = report
        report["seed"] = self.seed(total, specs)
        # The bench's own heap (texts and vectors of the whole dataset) is not what a web
        # worker holds: keep the collector from rescanning it during the measurements.
        gc.collect()
        gc.freeze()

        grouped = self.buckets(specs)
        report["buckets"] = {}
        self._api_queries: dict[str, list[tuple[ProjectSpec, str, list[int]]]] = {}
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
                project = self.projects[spec.slug]
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
                select_ms, all_ms = self.replay(statements)
                select.append(select_ms)
                issued.append(all_ms)
                exact_ms, truth = self.exact_truth(project, self.embedder.embed_query(text))
                exact.append(exact_ms)
                recalls.append(self.recall_at(truth, found))
                by_project.setdefault(spec.slug, []).append(recalls[-1])
                api_queries.append((spec, text, found))
                if index < len(members):
                    plans.append(
                        {"project": spec.slug, "rows": spec.size, **self.explain(statements)}
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
            self._api_queries[name] = api_queries
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
            self.measure_api(total, report)
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
        self.judge_size(total, report)

    # -- HTTP API --

    def start_server(self) -> None:
        """A real gunicorn on 127.0.0.1 (the same flags as `engramia serve`)."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        env = dict(
            os.environ,
            ENGRAMIA_DATABASE_URL=self.settings.DATABASE_URL,
            ENGRAMIA_API_THROTTLE="1000000/min",
            ENGRAMIA_LOG_LEVEL="WARNING",
        )
        log = (self.home / "gunicorn.log").open("wb")
        self.server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "engramia_site.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.args.web_workers),
                "--worker-class",
                "gthread",
                "--threads",
                "4",
                "--timeout",
                "120",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def stop_server(self) -> None:
        """Stop the gunicorn this bench started (by its pid)."""
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        self.server = None

    def api_key(self) -> str:
        """A fresh tenant-wide reader key for the bench user (older bench keys removed)."""
        from django.contrib.auth import get_user_model

        from tenants.choices import Role
        from tenants.models import ApiKey, Tenant
        from tenants.services import create_api_key, set_membership

        tenant = Tenant.objects.get(slug=TENANT)
        user, _ = get_user_model().objects.get_or_create(
            username="bench@localhost", defaults={"email": "bench@localhost"}
        )
        set_membership(user=user, scope=tenant, role=Role.OWNER)
        ApiKey.objects.filter(user=user, name=KEY_NAME).delete()
        return create_api_key(
            user=user, tenant=tenant, project=None, name=KEY_NAME, role=Role.READER
        ).secret

    def measure_api(self, total: int, report: dict[str, Any]) -> None:
        """POST /v1/recall through gunicorn with the same queries (new to the server's cache)."""
        import httpx

        secret = self.api_key()
        if self.server is None:
            self.start_server()
        base = f"http://127.0.0.1:{self.port}"
        headers = {"Authorization": f"Bearer {secret}"}
        print(
            f"\n  recall through the HTTP API (gunicorn gthread, {self.args.web_workers} "
            f"workers x 4 threads, one keep-alive client, {self.args.api_requests} requests "
            "per bucket; ms)"
        )
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            deadline = time.monotonic() + 90
            first = next(iter(self._api_queries.values()))[0][0].slug
            while True:
                try:
                    response = client.post(
                        "/v1/recall",
                        json={"task": "warm up", "limit": 1},
                        headers={"X-Engramia-Project": first},
                    )
                    if response.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or self.server.poll() is not None:  # type: ignore[union-attr]
                    raise RuntimeError(f"gunicorn did not answer; see {self.home}/gunicorn.log")
                time.sleep(0.3)
            for index in range(10):
                client.post(
                    "/v1/recall",
                    json={"task": f"warm up {index}", "limit": LIMIT},
                    headers={"X-Engramia-Project": first},
                )
            report["api"] = {}
            print(
                f"  {'bucket':26s} {'p50':>7s} {'p95':>7s} {'svc p50':>8s} {'api/svc':>8s} "
                f"{'api/sql':>8s} {'same ids':>8s}"
            )
            for name, queries in self._api_queries.items():
                latencies, same = [], 0
                chosen = (queries * math.ceil(self.args.api_requests / len(queries)))[
                    : self.args.api_requests
                ]
                for spec, text, expected in chosen:
                    begin = time.perf_counter()
                    response = client.post(
                        "/v1/recall",
                        json={"task": text, "limit": LIMIT},
                        headers={"X-Engramia-Project": spec.slug},
                    )
                    latencies.append(ms_since(begin))
                    response.raise_for_status()
                    ids = [match["pattern_id"] for match in response.json()["matches"]]
                    same += ids == expected
                bucket = report["buckets"][name]
                row = {
                    "p50": percentile(latencies, 0.5),
                    "p95": percentile(latencies, 0.95),
                    "same_ids": same / len(chosen),
                    "requests": len(chosen),
                }
                report["api"][name] = row
                print(
                    f"  {name:26s} {row['p50']:7.2f} {row['p95']:7.2f} "
                    f"{bucket['service_p50']:8.2f} {row['p50'] / bucket['service_p50']:8.2f} "
                    f"{row['p50'] / bucket['sql_select_p50']:8.2f} {row['same_ids']:8.0%}"
                )
        print(
            "  (requests after the first of each query text hit the server's query-vector "
            "cache when --api-requests exceeds --queries)"
        )

    # -- threshold and ef_search --

    def threshold_study(
        self, specs: list[ProjectSpec], *, min_rows: int = 0, title: str = ""
    ) -> list[dict[str, Any]]:
        """By project size: exact cost, and the HNSW-path SQL's plan, cost and recall@10 at
        several ef_search, as the planner runs it and with the HNSW index forced."""
        threshold = self.recall.EXACT_SEARCH_MAX_ROWS
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
            project = self.projects[spec.slug]
            vectors = [
                self.embedder.embed_query(text)
                for text in query_texts(spec, count, self.args.seed + 7)
            ]
            truths = [self.exact_truth(project, vector)[1] for vector in vectors]
            exact = [self.run_candidates(project, v, hnsw=False)[0] for v in vectors]
            row: dict[str, Any] = {
                "project": spec.slug,
                "rows": spec.size,
                "exact_p50": percentile(exact, 0.5),
                "ef": {},
            }
            # Forced HNSW on small projects costs up to hnsw.max_scan_tuples per query: one ef.
            sweep = EF_SWEEP if spec.size >= 1000 else (self.recall.HNSW_EF_SEARCH,)
            for ef in sweep:
                cell: dict[str, Any] = {}
                for mode in ("planner", "forced"):
                    times, recalls, paths = [], [], set()
                    for index, (vector, truth) in enumerate(zip(vectors, truths, strict=True)):
                        elapsed, found, path = self.run_candidates(
                            project,
                            vector,
                            hnsw=True,
                            ef_search=ef,
                            force=mode == "forced",
                            explain=index == 0,
                        )
                        times.append(elapsed)
                        recalls.append(self.recall_at(truth, found))
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
            for n, d in self.hnsw_indexes().items()
            if f"'{self.model}'" in d and not n.startswith(PROJECT_INDEX_PREFIX)
        )
        report["index_variants"] = {}
        for variant in self.args.index_variants:
            m, ef_construction = (int(part) for part in variant.split(":"))
            definition = re.sub(
                r"WITH \([^)]*\)", f"WITH (m='{m}', ef_construction='{ef_construction}')", original
            )
            self._index_file.write_text(json.dumps({name: original}))
            self.sql(f"DROP INDEX {name}")
            begin = time.perf_counter()
            with self.connection.cursor() as cursor:
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
            self.sql(f"DROP INDEX {name}")
            with self.connection.cursor() as cursor:
                cursor.execute("SET maintenance_work_mem = '1GB'")
                cursor.execute(original)
                cursor.execute("RESET maintenance_work_mem")
            self._index_file.unlink()

    # -- learn and bulk import --

    def measure_learn(self, total: int, specs: list[ProjectSpec], report: dict[str, Any]) -> None:
        """learn_pattern latency into a small and the largest project; learn_patterns_bulk rate."""
        from engramia_site.request_context import acting_as
        from memory.services.learn import LearnItem, learn_pattern, learn_patterns_bulk
        from tenants.services import ensure_project

        small = min(specs, key=lambda s: abs(s.size - 200))
        large = max(specs, key=lambda s: s.size)
        report["learn"] = {}
        print(f"\n  learn_pattern ({self.args.learn} calls per project, fresh tasks; ms)")
        with acting_as(label="bench"):
            for spec in (small, large):
                project = self.projects[spec.slug]
                rng = random.Random(f"{self.args.seed}:learn:{spec.rank}:{total}")
                latencies, stored_ids, skipped = [], [], 0
                for index in range(self.args.learn):
                    text = f"{task_text(rng, spec)} (run {index})"
                    begin = time.perf_counter()
                    outcome = learn_pattern(
                        project=project, task=text, code=code_text(text), source="bench"
                    )
                    latencies.append(ms_since(begin))
                    if outcome.stored:
                        stored_ids.append(outcome.pattern_id)
                    else:
                        skipped += 1
                self.sql("DELETE FROM memory_evaluation WHERE pattern_id = ANY(%s)", [stored_ids])
                self.sql("DELETE FROM memory_pattern WHERE id = ANY(%s)", [stored_ids])
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

            project = ensure_project(TENANT, BULK_PROJECT)
            project.embedding_model = self.model
            project.save(update_fields=["embedding_model"])
            self.sql("DELETE FROM memory_pattern WHERE project_id = %s", [project.pk])
            spec = ProjectSpec(BULK_PROJECT, 0, 0, "data", ["S3", "Postgres"])
            rng = random.Random(f"{self.args.seed}:bulk:{total}")
            items = []
            for index in range(self.args.bulk):
                text = f"{task_text(rng, spec)} (import {index})"
                items.append(
                    LearnItem(task=text, code=code_text(text), external_id=f"bench-{index}")
                )
            begin = time.perf_counter()
            imported = learn_patterns_bulk(project=project, items=items)
            elapsed = time.perf_counter() - begin
            self.sql("DELETE FROM memory_pattern WHERE project_id = %s", [project.pk])
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

    # -- verdicts --

    def judge_size(self, total: int, report: dict[str, Any]) -> None:
        """Compare this size's numbers with the issue's targets."""
        results = self.results
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
        limit_ms = TARGETS["api_p50_ms"][self.args.embedder]  # type: ignore[index]
        for name, row in report.get("api", {}).items():
            results.judge(
                total,
                f"API p50 {name}",
                f"{row['p50']:.2f} ms",
                f"<= {limit_ms} ms" + ("" if total >= 100_000 else " (set for 100k)"),
                row["p50"] <= limit_ms,
            )
        if self.args.embedder == "local":
            for slug, row in report["learn"].items():
                results.judge(
                    total,
                    f"learn p50 {slug} ({row['rows']} rows)",
                    f"{row['p50']:.2f} ms",
                    "<= 25 ms",
                    row["p50"] <= TARGETS["learn_p50_ms_local"],
                )

    # -- conditions and summary --

    def conditions(self) -> dict[str, Any]:
        """Everything the numbers depend on."""
        import django
        import psycopg

        # The cast loads pgvector into this session, which defines its hnsw.* settings.
        version = self.sql(
            "SELECT version(), (SELECT extversion FROM pg_extension "
            "WHERE extname = 'vector'), '[1]'::vector"
        )[0]
        server = {
            name: self.setting(name)
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
        conditions = {
            "machine": f"{cpu_model()}, os.cpu_count={os.cpu_count()}, usable="
            f"{len(os.sched_getaffinity(0))}, RAM {memory_gib():.1f} GiB",
            "load_average_start": load_average(),
            "python": platform.python_version(),
            "django": django.get_version(),
            "psycopg": psycopg.__version__,
            "postgres": str(version[0]).split(" on ")[0],
            "pgvector": version[1],
            "database": "embedded server under " + str(self.home / "pgdata")
            if not self.args.database_url
            else "--database-url",
            "server_settings": server,
            "hnsw_indexes": [d.split(" USING ")[1] for d in self.hnsw_indexes().values()],
            "recall_constants": {
                name: getattr(self.recall, name)
                for name in (
                    "EXACT_SEARCH_MAX_ROWS",
                    "CANDIDATE_FACTOR",
                    "MIN_CANDIDATES",
                    "HNSW_EF_SEARCH",
                )
            },
            "embedder": f"{self.model} ({self.dimensions}-d)"
            + (
                f", onnxruntime intra-op threads {getattr(self.embedder, 'threads', '?')}"
                if self.args.embedder == "local"
                else ""
            ),
            "dataset": f"Zipf s={self.args.zipf} over {self.args.projects} projects (min 10 "
            "rows), tasks of ~8-16 words from word lists in 12 domains",
        }
        print("conditions")
        for name, value in conditions.items():
            print(f"  {name:20s} {value}")
        self.results.conditions.update(conditions)
        return conditions

    def summary(self) -> None:
        """All target verdicts of the run in one table."""
        print(f"\nsummary ({self.model}; load average at end {load_average()})")
        for size, name, value, target, outcome in self.results.verdicts:
            print(f"  N={size:<7d} {outcome}  {name}: {value}  [{target}]")
        self.results.conditions["load_average_end"] = load_average()


@contextmanager
def bench_session(args: argparse.Namespace) -> Iterator[Bench]:
    """A bench whose API server is always stopped, however the run ends."""
    bench = Bench(args)
    try:
        yield bench
    finally:
        bench.stop_server()


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
    configure(args)
    with bench_session(args) as bench:
        bench.conditions()
        for total in args.sizes:
            bench.measure_size(total)
        bench.summary()
        if args.json:
            Path(args.json).write_text(
                json.dumps(
                    {
                        "conditions": bench.results.conditions,
                        "sizes": bench.results.sizes,
                        "verdicts": bench.results.verdicts,
                    },
                    indent=1,
                    default=str,
                )
            )
    print(f"total runtime {timedelta(seconds=round(time.perf_counter() - started))}")


if __name__ == "__main__":
    main()
