"""The dataset: word lists and task texts, the Zipf project layout, and seeding the patterns
table (vectors, with an on-disk cache for the local model; COPY with the HNSW index dropped,
then the index rebuilt and projects' own indexes synced)."""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import dataclass
from typing import Any

from .report import Results
from .sql import Database

TENANT = "bench"
# A perturbed copy of a real vector: noise of this norm before re-normalising (cosine ≈ 0.89
# to the original, about what a paraphrase scores with MiniLM).
PERTURBATION = 0.5

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


# --- seeding ------------------------------------------------------------------------------------


def embed_in_chunks(embedder: Any, texts: list[str], chunk: int = 10_000) -> Any:
    """float32 vectors of the texts, embedded a chunk at a time (a million rows as Python
    float lists would need ~12 GB)."""
    import numpy as np

    vectors = np.empty((len(texts), embedder.dimensions), dtype=np.float32)
    for start in range(0, len(texts), chunk):
        block = embedder.embed_documents(texts[start : start + chunk])
        vectors[start : start + len(block)] = np.asarray(block, dtype=np.float32)
    return vectors


class Dataset:
    """Seeds the patterns table for one size and keeps its projects (slug → Project)."""

    def __init__(
        self, args: argparse.Namespace, db: Database, embedder: Any, results: Results
    ) -> None:
        self.args = args
        self.db = db
        self.embedder = embedder
        self.model = db.model
        self.dimensions = db.dimensions
        self.results = results
        self.projects: dict[str, Any] = {}

    def vectors_for(self, texts: list[str], domains: list[str]) -> tuple[list[str], Any]:
        """Vectors for the rows (and the texts actually stored), embedding as the model allows."""
        if self.args.embedder == "hash":
            started = time.perf_counter()
            vectors = embed_in_chunks(self.embedder, texts)
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

        cache_file = self.db.home / "vectors" / f"{self.model.replace(':', '_')}.npz"
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
        from tenants.models import Project, Tenant
        from tenants.services import ensure_project

        args = self.args
        projects = {spec.slug: ensure_project(TENANT, spec.slug, actor=None) for spec in specs}
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
        count = self.db.sql("SELECT count(*) FROM memory_pattern")[0][0]
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
        timings = self.load([project_id for project_id, _ in rows], stored, vectors)
        Tenant.objects.filter(pk=tenant.pk).update(name=fingerprint)
        return timings

    def load(self, project_ids: list[int], texts: list[str], vectors: Any) -> dict[str, Any]:
        """Replace the patterns table's rows with these (COPY with the HNSW indexes dropped,
        then rebuilt, VACUUM ANALYZE, and the projects' own indexes synced); the timings."""
        from memory.services.indexes import PROJECT_INDEX_PREFIX
        from memory.services.task_text import task_hash

        total = len(texts)
        timings: dict[str, Any] = {}
        self.db.sql("TRUNCATE memory_pattern CASCADE")

        indexes = self.db.hnsw_indexes()
        # Projects' own indexes are rebuilt by sync_project_indexes below, as in production.
        for name in [name for name in indexes if name.startswith(PROJECT_INDEX_PREFIX)]:
            self.db.sql(f"DROP INDEX {name}")
            del indexes[name]
        self.db.index_file.write_text(json.dumps(indexes))
        for name in indexes:
            self.db.sql(f"DROP INDEX {name}")
        started = time.perf_counter()
        vector_format = "[" + ",".join(["%.6g"] * self.dimensions) + "]"
        clock = random.Random(f"{self.args.seed}:time")
        now = time.time()
        columns = (
            "project_id, task, code, output, source, run_id, metadata, created_at, "
            "learned_at, updated_at, archived, task_hash, embedding, embedding_model, "
            "eval_count"
        )
        raw = self.db.connection.connection
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY memory_pattern ({columns}) FROM STDIN") as copy,
        ):
            for project_id, text, vector in zip(project_ids, texts, vectors, strict=True):
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
        with self.db.connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '1GB'")
            for definition in indexes.values():
                cursor.execute(definition)
            cursor.execute("RESET maintenance_work_mem")
        self.db.index_file.unlink()
        timings["index_s"] = time.perf_counter() - started
        started = time.perf_counter()
        self.db.sql("VACUUM ANALYZE memory_pattern")
        timings["vacuum_analyze_s"] = time.perf_counter() - started
        count = self.db.sql("SELECT count(*) FROM memory_pattern")[0][0]
        assert count == total, (count, total)
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

        marks: list[tuple[str, float]] = []

        def progress(message: str) -> None:
            if message.startswith("building "):
                marks.append((message.split()[1].rstrip(":"), time.perf_counter()))

        started = time.perf_counter()
        report = sync_project_indexes(progress=progress)
        elapsed = time.perf_counter() - started
        ends = [moment for _, moment in marks[1:]] + [started + elapsed] * bool(marks)
        # Each build starts when the previous one ends (one at a time, in the sync's order).
        builds = {name: end - begin for (name, begin), end in zip(marks, ends, strict=True)}
        if report.created or report.dropped:
            print(
                f"  project indexes (sync_project_indexes): built {len(report.created)}, dropped "
                f"{len(report.dropped)}, kept {len(report.kept)} in {elapsed:.1f} s"
            )
        return {
            "project_indexes": report.to_dict(),
            "project_index_s": elapsed,
            "project_index_builds_s": builds,
        }
