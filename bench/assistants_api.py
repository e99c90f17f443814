"""Benchmark the Assistants-compatible API: what a run adds to the LLM's own time, and whether
many open streams slow the rest of the service.

Runs the site as `engramia serve` does (gunicorn, uvicorn workers on engramia_site.asgi, a job
worker) against a database of its own (the embedded server under .engramia-bench/assistants)
and a loopback fake LLM, then measures:

1. per streamed run: wall time from the request to `done`, minus the fake's own time for that
   model call (the added latency: HTTP, auth, run row, recall, steps, message, completion);
2. streaming first-token overhead: time to the first `thread.message.delta`, minus the fake's
   own time to its first token (and, of it, the time from the fake's first token to the
   client's first delta);
3. per job-executed run: the job's time minus the model call (and, for the record, the
   create_and_poll wall time including the worker's queue pickup);
4. 50 concurrent streamed runs against a slow fake (a token every 100 ms, 150 tokens) while
   POST /v1/recall is timed once every stream receives tokens: its p50 must stay within 1.5x of
   its idle p50, and no request may wait for a free worker (all 50 streams receive tokens at
   once, which a fixed pool of request threads would cap, and no recall takes a multiple of its
   idle time).

Wall times grow with the machine's load; the CPU the site spends per run (web workers, job
worker and database, from /proc) does not, so it is reported too.

Targets: added latency <= 30 ms p50, first-token overhead <= 20 ms p50, recall ratio <= 1.5.

Run: .venv/bin/python bench/assistants_api.py --runs 30  (1-2 minutes; more on a busy machine)
     .venv/bin/python bench/assistants_api.py --embedder hash --runs 20 --streams 50
     .venv/bin/python bench/assistants_api.py --runs 40 --streams 0  (the runs only: A/B checks)
     .venv/bin/python bench/assistants_api.py --runs 40 --streams 0 --idle  (the web path alone)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TENANT, PROJECT = "bench", "assistants"
STARTED = datetime.now(
    UTC
)  # jobs left by earlier (interrupted) runs of the bench are not waited for


def percentile(values: list[float], share: float) -> float:
    """The share-th percentile (nearest rank) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def summary(values: list[float]) -> str:
    """p50 (p95, max) in ms."""
    return f"{percentile(values, 0.5):7.1f} ({percentile(values, 0.95):6.1f}, {max(values):6.1f})"


def configure(args: argparse.Namespace) -> None:
    """Point Django at the bench's own data dir and database, migrate, and set it up."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "engramia_site.settings"
    os.environ["ENGRAMIA_HOME"] = str(Path(args.home).resolve())
    os.environ["ENGRAMIA_EMBEDDINGS"] = args.embedder
    os.environ.setdefault("ENGRAMIA_LOG_LEVEL", "WARNING")
    os.environ.pop("ENGRAMIA_DATABASE_URL", None)  # never a dev or production database
    Path(args.home).mkdir(parents=True, exist_ok=True)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def seed(args: argparse.Namespace) -> tuple[str, str]:
    """The bench project with memory to recall, an assistant, and an editor key."""
    from django.contrib.auth import get_user_model

    from assistants.models import Assistant
    from assistants.openai.services.objects import create_assistant
    from memory.models import Pattern
    from memory.services import LearnItem, learn_patterns_bulk
    from tenants.models import ApiKey
    from tenants.services import create_api_key, ensure_project, set_membership

    project = ensure_project(TENANT, PROJECT, actor=None)
    if not Pattern.objects.filter(project=project).exists():
        items = [
            LearnItem(
                task=f"How do I {verb} the {noun} in a {place} setup?",
                code=f"To {verb} the {noun}, use the standard tool for a {place} setup.",
                external_id=f"bench-{index}",
            )
            for index, (verb, noun, place) in enumerate(
                (v, n, p)
                for v in ("parse", "rotate", "merge", "index", "compress")
                for n in ("logs", "csv files", "tables", "queues", "images", "configs")
                for p in ("cloud", "local", "cluster", "mobile", "desktop")
            )
        ]
        learn_patterns_bulk(project=project, items=items, actor=None)
    user, _ = get_user_model().objects.get_or_create(
        username="bench-assistants", defaults={"email": "bench-assistants@localhost"}
    )
    set_membership(user=user, scope=project, role="editor", actor=None)
    ApiKey.objects.filter(user=user).delete()
    secret = create_api_key(
        user=user, tenant=project.tenant, project=project, name="bench", role="editor", actor=None
    ).secret
    assistant = Assistant.objects.filter(project=project, public_id="asst_bench").first()
    if assistant is None:
        values = {"model": "gpt-bench", "instructions": "Answer briefly."}
        create_assistant(project=project, values=values, actor=None, public_id="asst_bench")
    return secret, "asst_bench"


class Site:
    """The web server (as `engramia serve` runs it) and one job worker, on this bench's data."""

    def __init__(self, args: argparse.Namespace, llm_url: str) -> None:
        from django.conf import settings

        from tenants.management.commands.serve import web_command, web_environment

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "ENGRAMIA_DATABASE_URL": settings.DATABASE_URL,
            "ENGRAMIA_API_THROTTLE": "10000000/min",
            "ENGRAMIA_LLM": "openai",
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": llm_url,
            "ENGRAMIA_LOG_LEVEL": "WARNING",
        }
        command = web_command(
            host="127.0.0.1", port=self.port, web_workers=args.web_workers, home=Path(args.home)
        )
        command = [part for part in command if part not in ("--access-logfile", "-")]
        log = (Path(args.home) / "site.log").open("ab")
        self.web_env = web_environment(env)
        self.web = subprocess.Popen(command, cwd=ROOT, env=self.web_env, stdout=log, stderr=log)
        worker = [sys.executable, "-m", "engramia.cli", "qcluster"]
        self.worker = subprocess.Popen(worker, cwd=ROOT, env=env, stdout=log, stderr=log)
        self.pgdata = Path(args.home) / "pgdata"

    def cpu(self) -> tuple[float, ...]:
        """CPU seconds so far of the web server, the database and the job worker, and when."""
        from assistants_bench.cpu import cpu_seconds, postmaster_pid

        parts = (self.web.pid, postmaster_pid(self.pgdata), self.worker.pid)
        return (time.monotonic(), *(cpu_seconds(pid) for pid in parts))

    def idle_cpu_rates(self, seconds: float = 5.0) -> tuple[float, ...]:
        """CPU seconds per second each part spends with no requests (the worker polls)."""
        before = self.cpu()
        time.sleep(seconds)
        after = self.cpu()
        elapsed = after[0] - before[0]
        return tuple((b - a) / elapsed for a, b in zip(before[1:], after[1:], strict=True))

    def wait_ready(self, key: str) -> None:
        import httpx

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                ok = httpx.get(f"{self.url}/openai/v1/assistants", headers=auth(key), timeout=5)
                if ok.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise RuntimeError("the site did not start; see site.log under --home")

    def stop(self) -> None:
        for process in (self.web, self.worker):
            if process.poll() is None:
                process.terminate()
        for process in (self.web, self.worker):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def cpu_per_run(
    before: tuple[float, ...], after: tuple[float, ...], idle: tuple[float, ...], runs: int
) -> list[float]:
    """ms of CPU per run for web, database and worker, less what they spend idle."""
    elapsed = after[0] - before[0]
    return [
        max(0.0, (b - a - rate * elapsed)) * 1000 / runs
        for a, b, rate in zip(before[1:], after[1:], idle, strict=True)
    ]


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "OpenAI-Beta": "assistants=v2"}


QUESTIONS = [
    f"How do I {v} the logs in a cloud setup, case {n}?"
    for v in ("parse", "rotate")
    for n in range(200)
]


async def new_thread(client: Any, key: str, question: str) -> str:
    """A thread holding the question; its id."""
    thread = await client.post(
        "/openai/v1/threads",
        json={"messages": [{"role": "user", "content": question}]},
        headers=auth(key),
    )
    return str(thread.json()["id"])


async def stream_once(client: Any, key: str, assistant: str, thread: str) -> dict[str, float]:
    """One streamed run on a thread made before: seconds to the first delta and to done, on
    the client's clock."""
    path = f"/openai/v1/threads/{thread}/runs"
    body = {"assistant_id": assistant, "stream": True}
    started = time.monotonic()
    first = None
    async with client.stream("POST", path, json=body, headers=auth(key)) as answer:
        async for line in answer.aiter_lines():
            if first is None and line == "event: thread.message.delta":
                first = time.monotonic()
            if line == "data: [DONE]":
                break
    return {"started": started, "first": first or float("nan"), "done": time.monotonic()}


def measure_runs(
    args: argparse.Namespace, site: Site, key: str, assistant: str, fake: Any
) -> dict[str, Any]:
    """Added latency and first-token overhead of streamed runs, and job-run overhead."""
    import httpx

    async def warm_up() -> list[str]:
        async with httpx.AsyncClient(base_url=site.url, timeout=60) as client:
            for question in QUESTIONS[:5]:  # connections, model, caches
                await stream_once(client, key, assistant, await new_thread(client, key, question))
            return [await new_thread(client, key, q) for q in QUESTIONS[5 : 5 + args.runs]]

    async def sequential(threads: list[str]) -> list[dict[str, float]]:
        timings = []
        async with httpx.AsyncClient(base_url=site.url, timeout=60) as client:
            for thread in threads:
                if args.idle:  # the previous run's learning and judging done: the web path alone
                    await asyncio.to_thread(drain)
                    await asyncio.sleep(0.2)
                timings.append(await stream_once(client, key, assistant, thread))
        return timings

    threads = asyncio.run(warm_up())
    drain()
    idle = site.idle_cpu_rates()
    before = len(fake.requests)
    cpu = [site.cpu()]
    timings = asyncio.run(sequential(threads))
    drain()  # each run's learning (and judging) job is part of what it costs
    cpu.append(site.cpu())
    calls = fake.requests[before + 0 :]
    calls = [call for call in calls if call.json.get("stream")][-args.runs :]
    added, overhead, called, relayed = [], [], [], []
    for timing, call in zip(timings, calls, strict=True):
        llm_total = call.answered_at - call.received_at
        llm_first = call.first_token_at - call.received_at
        added.append((timing["done"] - timing["started"] - llm_total) * 1000)
        overhead.append((timing["first"] - timing["started"] - llm_first) * 1000)
        called.append((call.received_at - timing["started"]) * 1000)
        relayed.append((timing["first"] - call.first_token_at) * 1000)
    return {
        "stream_added_ms": added,
        "first_token_overhead_ms": overhead,
        "model_call_ms": called,
        "first_token_relay_ms": relayed,
        "stream_cpu_ms": cpu_per_run(cpu[0], cpu[1], idle, args.runs),
        **job_runs(args, site, key, assistant, fake, idle),
    }


def job_runs(
    args: argparse.Namespace, site: Site, key: str, assistant: str, fake: Any, idle: Any
) -> dict[str, Any]:
    """Runs executed by the worker: start to completion minus the model call, poll latency
    (create and poll; the thread is made first), and the whole job (learning and queueing the
    judge come after the run completes)."""
    import warnings

    import openai

    from assistants.models import Run

    warnings.simplefilter("ignore", DeprecationWarning)
    client = openai.OpenAI(base_url=f"{site.url}/openai/v1", api_key=key, max_retries=0)
    engine, polled, whole = [], [], []
    cpu = [0.0, 0.0, 0.0]
    for question in QUESTIONS[200 : 200 + args.runs]:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": question}])
        drain()
        before_cpu = site.cpu()
        before = len(fake.requests)
        started = time.monotonic()
        run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant)
        polled.append((time.monotonic() - started) * 1000)
        call = fake.requests[before]
        llm = call.answered_at - call.received_at
        row = Run.objects.get(public_id=run.id)
        engine.append(((row.completed_at - row.started_at).total_seconds() - llm) * 1000)
        drain()
        job = Run.objects.select_related("job").get(pk=row.pk).job
        spent = cpu_per_run(before_cpu, site.cpu(), idle, args.runs)
        cpu = [total + part for total, part in zip(cpu, spent, strict=True)]
        whole.append(((job.finished_at - job.started_at).total_seconds() - llm) * 1000)
    return {
        "job_added_ms": engine,
        "job_whole_ms": whole,
        "create_and_poll_ms": polled,
        "job_cpu_ms": cpu,
    }


def drain(seconds: float = 30, then: str = "CPU figures include them") -> None:
    """Wait (up to seconds) until the worker has no job pending or running."""
    from jobs.models import Job

    deadline = time.monotonic() + seconds
    active = Job.objects.filter(status__in=("pending", "running"), created_at__gte=STARTED)
    while active.exists():
        if time.monotonic() > deadline:
            print(f"warning: jobs still pending after {seconds:.0f} s; {then}")
            return
        time.sleep(0.02)


def recall_timings(site: Site, key: str, count: int, first: int = 0) -> list[float]:
    """POST /v1/recall, one keep-alive client, sequential: ms each.

    Questions from QUESTIONS[first] on: each window asks its own, so that none is answered from
    the embedding cache a window before it filled."""
    import httpx

    times = []
    with httpx.Client(base_url=site.url, headers=auth(key), timeout=30) as client:
        for index in range(count):
            started = time.perf_counter()
            response = client.post(
                "/v1/recall",
                json={"task": QUESTIONS[(first + index) % len(QUESTIONS)], "limit": 5},
            )
            times.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return times


def measure_concurrency(
    args: argparse.Namespace, site: Site, key: str, assistant: str
) -> dict[str, Any]:
    """Recall's timings idle, then while args.streams streams receive tokens from the slow
    fake, then idle again."""
    # The workers load the embedder as they start: let that finish, then warm the connection.
    time.sleep(5)
    recall_timings(site, key, 10, first=3 * args.recalls)
    idle = recall_timings(site, key, args.recalls)
    script = Path(__file__).resolve().parent / "assistants_bench" / "streams.py"
    load = subprocess.Popen(
        [
            *(sys.executable, str(script), "--url", site.url, "--key", key),
            *("--assistant", assistant, "--streams", str(args.streams)),
            *("--tokens", str(args.stream_tokens)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    # Timed once every stream has its first token, so recall shares the site with all of them.
    assert load.stdout is not None and load.stdout.readline().strip() == "streaming"
    streaming_at = time.monotonic()
    busy = recall_timings(site, key, args.recalls, first=args.recalls)
    busy_until = time.monotonic()
    output, _ = load.communicate(timeout=900)
    # The streams' runs are learned and judged by the worker afterwards: "idle" waits for that.
    drain(300, then="the idle-after recalls share the machine with them")
    after = recall_timings(site, key, args.recalls, first=2 * args.recalls)
    result = json.loads(output)
    result["recall_window"] = (streaming_at, busy_until)
    return {"recall_idle_ms": idle, "recall_busy_ms": busy, "recall_after_ms": after, **result}


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals open at one moment."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = most = 0
    for _, step in edges:
        open_now += step
        most = max(most, open_now)
    return most


def row(label: str, value: str) -> None:
    """One line of the report: a label, then its figure."""
    print(f"  {label:54s}{value}")


def verdict(value: float, target: float) -> str:
    return f"  {'PASS' if value <= target else 'MISS'} (<= {target:g})"


def report(args: argparse.Namespace, runs: dict[str, Any], load: dict[str, Any] | None) -> bool:
    """Conditions, numbers and PASS/MISS against the targets; whether all were met."""
    from django.conf import settings

    print("conditions")
    row("machine", f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    row("site", f"as `engramia serve`: gunicorn, {args.web_workers} uvicorn workers")
    row("", f"{settings.WEB_THREADS} Django threads each, 1 job worker")
    pool = os.environ.get("ENGRAMIA_DB_POOL_SIZE") or "20 (engramia serve's default)"
    row("", f"database connections: a pool of {pool} per web worker")
    row("python", platform.python_version())
    row("database", f"embedded PostgreSQL under {args.home}")
    row("memory", f"150 patterns, embedder {args.embedder}")
    row("LLM", "loopback fake (Chat Completions), its own time subtracted per call")
    idle = ", each on an idle site (--idle)" if args.idle else ", back to back"
    print(f"\nper run, ms: p50 (p95, max) over {args.runs} runs{idle}")
    checks = []
    for name, label, target in (
        ("stream_added_ms", "streamed run, added to the LLM's own time", 30.0),
        ("first_token_overhead_ms", "streamed run, first-token overhead", 20.0),
        ("model_call_ms", "  of it, the request to the model having the call", None),
        ("first_token_relay_ms", "  of it, the model's first token to the client", None),
        ("job_added_ms", "job-executed run, added to the LLM's own time", 30.0),
        ("job_whole_ms", "the same, with learning and judging queued after", None),
        ("create_and_poll_ms", "create_and_poll wall time (queue pickup, polling)", None),
    ):
        p50 = percentile(runs[name], 0.5)
        row(label, summary(runs[name]) + ("" if target is None else verdict(p50, target)))
        if target is not None:
            checks.append(p50 <= target)
    for name, label in (("stream_cpu_ms", "streamed"), ("job_cpu_ms", "job")):
        web, database, worker = runs[name]
        row(
            f"CPU per {label} run: web, database, worker, ms",
            f"{web:7.1f} {database:7.1f} {worker:7.1f}",
        )
    if load is None:  # --streams 0: the per-run part only
        print(f"\n{'all per-run targets met' if all(checks) else 'TARGETS MISSED'}")
        return all(checks)
    return concurrency_report(args, load, checks)


def concurrency_report(args: argparse.Namespace, load: dict[str, Any], checks: list[bool]) -> bool:
    """The streams and recall part of the report; whether every check was met."""
    idle, busy, after = load["recall_idle_ms"], load["recall_busy_ms"], load["recall_after_ms"]
    streams, delay, tokens = load["streams"], load["token_delay"], load["tokens"]
    ratio = percentile(busy, 0.5) / percentile(idle, 0.5)
    print(
        f"\n{args.streams} concurrent streams; the fake sends {tokens} tokens, one every {delay} s"
    )
    row("POST /v1/recall idle before, ms", summary(idle))
    row("POST /v1/recall while every stream receives tokens, ms", summary(busy))
    row("POST /v1/recall idle after (runs learned), ms", summary(after))
    row("recall p50 ratio, during / idle before", f"{ratio:7.2f}" + verdict(ratio, 1.5))
    ratio_after = percentile(busy, 0.5) / percentile(after, 0.5)
    row("recall p50 ratio, during / idle after", f"{ratio_after:7.2f}")
    first = [(s["first"] or s["ended"]) - s["started"] for s in streams]
    created = [(s["created"] or s["ended"]) - s["started"] for s in streams]
    row("streams' first event after the request, ms", summary([1000 * t for t in created]))
    row("streams' first token after the request, ms", summary([1000 * t for t in first]))
    total = [s["ended"] - s["started"] for s in streams]
    row("streams' total time, s", f"{percentile(total, 0.5):7.2f} (max {max(total):.2f})")
    row("the fake alone per stream, s", f"{tokens * delay:7.2f}")
    completed = sum(bool(s["completed"]) for s in streams)
    row("streams completed", f"{completed}/{args.streams}")
    # A fixed pool of request threads would cap how many streams receive tokens at once.
    at_once = most_at_once([(s["first"] or s["ended"], s["ended"]) for s in streams])
    window_start, window_end = load["recall_window"]
    open_in_window = sum(
        1 for s in streams if (s["first"] or s["ended"]) <= window_start <= window_end <= s["ended"]
    )
    row("streams receiving tokens at once (most)", f"{at_once}/{args.streams}")
    row("streams open through the whole busy recall window", f"{open_in_window}/{args.streams}")
    # A recall that waited for a worker would take a multiple of its idle time.
    slow_recalls = sum(1 for value in busy if value > 10 * percentile(idle, 0.5))
    row("busy recalls over 10x the idle p50", f"{slow_recalls}/{len(busy)}")
    row("streams held back by a pool of workers", "yes" if at_once < args.streams else "no")
    # Either is a request that waited: for a thread (streams), or behind the streams (recall).
    waited = at_once < args.streams or slow_recalls > 0
    checks += [ratio <= 1.5, completed == args.streams, not waited]
    print(f"\n{'all targets met' if all(checks) else 'TARGETS MISSED'}")
    return all(checks)


def answer_or_grade(request: Any) -> Any:
    """The fast fake's reply: an answer to a run, or a grade to the judge that learning queues
    (the judge retries, then fails, on a reply without a score)."""
    from memory.providers.judge import JUDGE_SYSTEM_PROMPT
    from tests.fakes.llm_servers import Reply

    if JUDGE_SYSTEM_PROMPT[:40] in json.dumps(request.json):
        return Reply(text='{"score": 8, "feedback": "Name the tool."}')
    return Reply(text="Use the standard tool for it.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embedder", choices=("hash", "local"), default="local")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument(
        "--streams", type=int, default=50, help="0 skips the concurrency part (per-run only)"
    )
    parser.add_argument(
        "--idle",
        action="store_true",
        help="wait for the job worker before each streamed run (the web path alone)",
    )
    parser.add_argument("--recalls", type=int, default=100)
    parser.add_argument(
        "--stream-tokens", type=int, default=150, help="the slow fake's tokens per answer"
    )
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument(
        "--home", help="the bench's database (default: one per embedder under .engramia-bench)"
    )
    args = parser.parse_args()
    # A project keeps the model its vectors were made with: each embedder has its own database.
    suffix = "" if args.embedder == "local" else f"-{args.embedder}"
    args.home = args.home or str(ROOT / ".engramia-bench" / f"assistants{suffix}")
    if 3 * args.recalls + 10 > len(QUESTIONS):  # each recall window asks its own questions
        parser.error(f"--recalls can be at most {(len(QUESTIONS) - 10) // 3}")
    configure(args)
    key, assistant = seed(args)
    from tests.fakes.llm_servers import FakeLLMServer

    with FakeLLMServer(default=answer_or_grade) as fast:
        site = Site(args, fast.openai_base_url)
        try:
            site.wait_ready(key)
            runs = measure_runs(args, site, key, assistant, fast)
        finally:
            site.stop()
    if args.streams <= 0:
        report(args, runs, None)
        return
    slow = subprocess.Popen(
        [
            *(sys.executable, "-m", "tests.fakes.llm_servers"),
            *("--token-delay", "0.1", "--tokens", str(args.stream_tokens)),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        slow_url = slow.stdout.readline().strip()  # type: ignore[union-attr]
        site = Site(args, slow_url)
        try:
            site.wait_ready(key)
            load = measure_concurrency(args, site, key, assistant)
        finally:
            site.stop()
    finally:
        slow.stdin.close()  # type: ignore[union-attr]
        slow.wait(timeout=20)
    report(args, runs, load)


if __name__ == "__main__":
    main()
