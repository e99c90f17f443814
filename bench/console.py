"""Benchmark the admin console at scale: the pattern list, the dashboard, the audit CSV export,
and the cost of counting recalls on the recall path.

Seeds N patterns (default 100k) over Zipf-skewed projects with bench/recall_bench's loader (COPY,
the HNSW index rebuilt) into a database of its own (embedded, under .engramia-bench/console),
gives 70% of them a score and archives 5%, adds N audit entries, then times each page as Django
serves it in-process (the test client: middleware, queries, template; no network), as a
superuser and as a tenant owner. Server time, p50/p95 over --runs requests after 2 warm-ups.

Recall counting: memory.operations.recall as shipped (it counts) against the same call with
count_recall replaced by a no-op (recall as it was before), interleaved on the same project and
queries in one run, so the ratio holds on a loaded machine; and count_recall alone.

Run: .venv/bin/python bench/console.py                 # ~6 min the first time, then --reuse
     .venv/bin/python bench/console.py --reuse --runs 30
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from recall_bench import ROOT

sys.path.insert(0, str(ROOT))

TARGET_MS = 300.0


def configure(args: argparse.Namespace) -> None:
    """Point Django at the bench's own data dir and database, then set it up."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "engramia_site.settings"
    os.environ["ENGRAMIA_HOME"] = str(Path(args.home).resolve())
    os.environ["ENGRAMIA_EMBEDDINGS"] = "hash"
    os.environ["ENGRAMIA_RECALL_STATS_FLUSH_SECONDS"] = "0"  # the bench flushes itself
    os.environ.setdefault("ENGRAMIA_LOG_LEVEL", "WARNING")
    os.environ.pop("ENGRAMIA_DATABASE_URL", None)
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import django

    django.setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS = ["*"]


def seed(args: argparse.Namespace) -> None:
    """Patterns (recall_bench's loader), scores, archived rows and audit entries."""
    from django.core.management import call_command
    from recall_bench.dataset import Dataset, project_specs
    from recall_bench.report import Results
    from recall_bench.sql import Database

    from retrieval.embeddings import get_embedder

    call_command("migrate", interactive=False, verbosity=0)
    embedder = get_embedder("hash")
    db = Database(Path(args.home).resolve(), embedder.name, embedder.dimensions)
    db.restore_indexes()
    loader_args = argparse.Namespace(
        projects=args.projects, zipf=1.0, seed=1, embedder="hash", local_unique=0, reuse=args.reuse
    )
    dataset = Dataset(loader_args, db, embedder, Results())
    timings = dataset.seed(args.patterns, project_specs(args.patterns, loader_args))
    seeded = db.sql("SELECT count(*) FROM tenants_auditentry")[0][0] >= args.patterns
    if timings.get("reused") and seeded:
        return
    started = time.perf_counter()
    db.sql(
        "UPDATE memory_pattern SET eval_score = (id % 11), eval_count = 1, "
        "last_evaluated_at = learned_at WHERE id % 10 < 7"
    )
    db.sql("UPDATE memory_pattern SET archived = true WHERE id % 20 = 0")
    db.sql("TRUNCATE tenants_auditentry")
    db.sql(
        """
        INSERT INTO tenants_auditentry (content_type_id, object_pk, object_id, object_repr,
            action, changes_text, changes, timestamp, tenant_id, project_id, api_key_name,
            actor_email, serialized_data, additional_data, cid, remote_addr, remote_port)
        SELECT (SELECT id FROM django_content_type WHERE app_label = 'memory'
                AND model = 'pattern'),
            p.id::text, p.id, left(p.task, 200), 1, '',
            jsonb_build_object('code', jsonb_build_array('x', 'y')),
            now() - (p.id % 30) * interval '1 day', pr.tenant_id, p.project_id, '',
            'curator@bench.test', NULL, '{}'::jsonb, md5(p.id::text), NULL, NULL
        FROM memory_pattern p JOIN tenants_project pr ON pr.id = p.project_id
        """
    )
    db.sql("VACUUM ANALYZE memory_pattern")
    db.sql("VACUUM ANALYZE tenants_auditentry")
    elapsed = time.perf_counter() - started
    print(f"  scores, archived rows, {args.patterns} audit entries: {elapsed:.1f} s")


def personas() -> dict[str, object]:
    """A superuser, and the owner of the bench tenant (every project, through the tenant role)."""
    from django.contrib.auth import get_user_model

    from tenants.models import Tenant
    from tenants.services import set_membership

    users = get_user_model().objects
    root = users.filter(username="bench-root").first() or users.create_superuser(
        "bench-root", "root@bench.test", "x"
    )
    owner = users.filter(username="owner@bench.test").first() or users.create_user(
        "owner@bench.test", "owner@bench.test", "x", is_staff=True
    )
    set_membership(user=owner, scope=Tenant.objects.get(slug="bench"), role="owner", actor=None)
    return {"superuser": root, "tenant owner": owner}


def time_page(client: object, url: str, runs: int) -> tuple[float, float, int]:
    """p50 and p95 milliseconds of GET url, and the queries of the last request."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    samples = []
    for index in range(runs + 2):
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)  # type: ignore[attr-defined]
            if getattr(response, "streaming", False):
                for _ in response.streaming_content:
                    pass
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, (url, response.status_code)
        if index >= 2:
            samples.append(elapsed)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))], len(queries)


def bench_pages(args: argparse.Namespace) -> None:
    """The console's pages at scale, for each persona."""
    from django.test import Client

    from tenants.models import Project

    largest = Project.objects.filter(tenant__slug="bench").order_by("slug").first()
    pages = [
        ("pattern list", "/admin/memory/pattern/"),
        ("pattern list, page 20", "/admin/memory/pattern/?p=20"),
        ("pattern list, one project", f"/admin/memory/pattern/?project__id__exact={largest.pk}"),
        ("pattern list, eval 7-10, stale", "/admin/memory/pattern/?eval=high&stale=stale"),
        ("pattern list, unrated", "/admin/memory/pattern/?eval=unrated"),
        (
            "pattern list, similar to (one project)",
            f"/admin/memory/pattern/?similar=rotate+the+invoice&project__id__exact={largest.pk}",
        ),
        ("dashboard", "/admin/"),
        ("dashboard, one project", f"/admin/?project={largest.pk}"),
        ("audit list", "/admin/tenants/auditentry/"),
    ]
    print(f"\npages (server time in-process, {args.runs} runs after 2 warm-ups)")
    print(f"  {'persona':13s} {'page':42s} {'p50 ms':>8s} {'p95 ms':>8s} {'queries':>8s}")
    worst = 0.0
    for name, user in personas().items():
        client = Client()
        client.force_login(user)
        for label, url in pages:
            p50, p95, queries = time_page(client, url, args.runs)
            worst = max(worst, p50)
            print(f"  {name:13s} {label:42s} {p50:8.1f} {p95:8.1f} {queries:8d}")
    verdict = "PASS" if worst <= TARGET_MS else "MISS"
    print(f"  {verdict}  slowest p50 {worst:.1f} ms (target p50 <= {TARGET_MS:.0f} ms)")


def bench_export() -> None:
    """The whole audit log as CSV: time, rows per second, and the process's peak memory."""
    import resource

    from django.test import Client

    client = Client()
    client.force_login(personas()["superuser"])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    response = client.get("/admin/tenants/auditentry/export.csv")
    lines = sum(chunk.count(b"\n") for chunk in response.streaming_content)
    elapsed = time.perf_counter() - started
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(
        f"\naudit CSV export: {lines - 1} rows in {elapsed:.1f} s = {(lines - 1) / elapsed:.0f} "
        f"rows/s; peak memory grew {grown:.0f} MiB (rows are streamed, 2000 per fetch)"
    )


def bench_recall_counting(args: argparse.Namespace) -> None:
    """operations.recall as shipped (counted) against the same call with the count cut out."""
    from recall_bench.dataset import ProjectSpec, query_texts

    from memory import operations
    from memory.recall_stats import count_recall, flush_recall_counts
    from tenants.models import Project

    project = Project.objects.filter(tenant__slug="bench").order_by("slug")[5]
    spec = ProjectSpec(project.slug, 6, 0, "billing", ["stripe", "slack"])
    queries = query_texts(spec, args.recalls, 7)

    def uncounted(project_id: int) -> None:
        """The recall path before counting existed."""

    counted, plain = [], []
    for text in queries[:5]:  # warm-up
        operations.recall(project=project, data={"task": text})
    for index, text in enumerate(queries):
        # Alternate which variant goes first, so neither always meets a warm cache.
        order = [(counted, count_recall), (plain, uncounted)]
        for samples, counter in order if index % 2 else reversed(order):
            operations.count_recall = counter  # type: ignore[assignment]
            started = time.perf_counter()
            operations.recall(project=project, data={"task": text})
            samples.append((time.perf_counter() - started) * 1000)
    operations.count_recall = count_recall  # type: ignore[assignment]
    flush_recall_counts()
    calls = 200_000
    started = time.perf_counter()
    for _ in range(calls):
        count_recall(project.pk)
    per_call_us = (time.perf_counter() - started) / calls * 1e6
    written = flush_recall_counts()
    size = project.patterns.count()

    def p(samples: list[float], q: float) -> float:
        return sorted(samples)[int(q * (len(samples) - 1))]

    print(f"\nrecall counting ({args.recalls} recalls each, interleaved, project of {size} rows)")
    print(f"  {'':34s} {'p50 ms':>8s} {'p95 ms':>8s}")
    print(f"  {'operations.recall, no count':34s} {p(plain, 0.5):8.2f} {p(plain, 0.95):8.2f}")
    print(f"  {'operations.recall, counted':34s} {p(counted, 0.5):8.2f} {p(counted, 0.95):8.2f}")
    print(
        f"  ratio counted / no count: p50 {p(counted, 0.5) / p(plain, 0.5):.3f}, "
        f"p95 {p(counted, 0.95) / p(plain, 0.95):.3f}"
    )
    print(f"  count_recall alone: {per_call_us:.2f} µs per call; one flush wrote {written} counts")


def profile_page(args: argparse.Namespace) -> None:
    """Where one page's server time goes: all SQL statements against the rest (Python, template)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    client = Client()
    personas()
    client.force_login(get_user_model().objects.get(username=args.user))
    for _ in range(2):
        client.get(args.profile)
    print(f"\n{args.profile} as {args.user}")
    timings: list[tuple[float, str]] = []

    def timed(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timings.append(((time.perf_counter() - started) * 1000, sql))

    for _ in range(args.runs):
        timings.clear()
        started = time.perf_counter()
        with connection.execute_wrapper(timed):
            client.get(args.profile)
        total = (time.perf_counter() - started) * 1000
        sql = sum(spent for spent, _ in timings)
        print(f"  total {total:7.1f} ms   SQL {sql:7.1f} ms   rest {total - sql:7.1f} ms")
    for spent, statement in sorted(timings, reverse=True)[:5]:
        print(f"  {spent:7.1f} ms  {statement[:160]}")


def main() -> None:
    """Parse arguments, seed, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patterns", type=int, default=100_000)
    parser.add_argument("--projects", type=int, default=150)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--recalls", type=int, default=200)
    parser.add_argument("--reuse", action="store_true", help="keep a table seeded the same way")
    parser.add_argument("--home", default=str(ROOT / ".engramia-bench" / "console"))
    parser.add_argument("--profile", metavar="URL", help="only split one page's time: SQL, rest")
    parser.add_argument("--user", default="bench-root", help="who --profile signs in as")
    args = parser.parse_args()
    started = time.perf_counter()
    configure(args)
    import django
    from recall_bench.report import cpu_model, load_average, memory_gib

    print("conditions")
    print(f"  machine   {cpu_model()}, {os.cpu_count()} cpus, {memory_gib():.1f} GiB")
    print(f"  load      {load_average()} (at start)")
    print(f"  django    {django.get_version()}, embedder hash:384, database embedded PostgreSQL")
    print(
        f"  dataset   {args.patterns} patterns over {args.projects} projects (Zipf s=1), 70% "
        f"scored, 5% archived; {args.patterns} audit entries"
    )
    seed(args)
    if args.profile:
        profile_page(args)
        return
    bench_pages(args)
    bench_export()
    bench_recall_counting(args)
    print(f"\ntotal runtime {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
