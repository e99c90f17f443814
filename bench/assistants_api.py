"""Benchmark the Assistants-compatible API: what a run adds to the LLM's own time, and whether
many open streams slow the rest of the service.

Runs the site as `engramia serve` does (gunicorn, uvicorn workers on engramia_site.asgi, a job
worker) against a database of its own (the embedded server under .engramia-bench/assistants)
and a loopback fake LLM, then measures:

1. per streamed run: wall time from the request to `done`, minus the fake's own time for that
   model call (the added latency: HTTP, auth, run row, recall, steps, message, completion);
2. streaming first-token overhead: time to the first `thread.message.delta`, minus the fake's
   own time to its first token;
3. per job-executed run: the job's time minus the model call (and, for the record, the
   create_and_poll wall time including the worker's queue pickup);
4. 50 concurrent streamed runs against a slow fake (a token every 100 ms) while POST /v1/recall
   is timed: its p50 must stay within 1.5x of its idle p50, and no request may wait for a free
   worker (every stream's first token and every recall arrive without queueing).

Targets: added latency <= 30 ms p50, first-token overhead <= 20 ms p50, recall ratio <= 1.5.

Run: .venv/bin/python bench/assistants_api.py            (about 2 minutes after the first setup)
     .venv/bin/python bench/assistants_api.py --embedder hash --runs 20 --streams 50
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TENANT, PROJECT = "bench", "assistants"


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

        from tenants.management.commands.serve import web_command

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
        self.web = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        worker = [sys.executable, "-m", "engramia.cli", "qcluster"]
        self.worker = subprocess.Popen(worker, cwd=ROOT, env=env, stdout=log, stderr=log)

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


async def stream_once(client: Any, key: str, assistant: str, question: str) -> dict[str, float]:
    """One streamed run on a thread holding the question (made first, not timed): seconds to
    the first delta and to done, on the client's clock."""
    thread = await client.post(
        "/openai/v1/threads",
        json={"messages": [{"role": "user", "content": question}]},
        headers=auth(key),
    )
    path = f"/openai/v1/threads/{thread.json()['id']}/runs"
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

    async def sequential() -> list[dict[str, float]]:
        async with httpx.AsyncClient(base_url=site.url, timeout=60) as client:
            for question in QUESTIONS[:5]:  # warm up: connections, model, caches
                await stream_once(client, key, assistant, question)
            return [
                await stream_once(client, key, assistant, question)
                for question in QUESTIONS[5 : 5 + args.runs]
            ]

    before = len(fake.requests)
    timings = asyncio.run(sequential())
    calls = fake.requests[before + 0 :]
    calls = [call for call in calls if call.json.get("stream")][-args.runs :]
    added, overhead = [], []
    for timing, call in zip(timings, calls, strict=True):
        llm_total = call.answered_at - call.received_at
        llm_first = call.first_token_at - call.received_at
        added.append((timing["done"] - timing["started"] - llm_total) * 1000)
        overhead.append((timing["first"] - timing["started"] - llm_first) * 1000)
    return {
        "stream_added_ms": added,
        "first_token_overhead_ms": overhead,
        **job_runs(args, site, key, assistant, fake),
    }


def job_runs(
    args: argparse.Namespace, site: Site, key: str, assistant: str, fake: Any
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
    for question in QUESTIONS[200 : 200 + args.runs]:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": question}])
        before = len(fake.requests)
        started = time.monotonic()
        run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant)
        polled.append((time.monotonic() - started) * 1000)
        call = fake.requests[before]
        llm = call.answered_at - call.received_at
        row = Run.objects.get(public_id=run.id)
        engine.append(((row.completed_at - row.started_at).total_seconds() - llm) * 1000)
        while (job := Run.objects.select_related("job").get(pk=row.pk).job).finished_at is None:
            time.sleep(0.02)
        whole.append(((job.finished_at - job.started_at).total_seconds() - llm) * 1000)
    return {"job_added_ms": engine, "job_whole_ms": whole, "create_and_poll_ms": polled}


def recall_timings(site: Site, key: str, count: int) -> list[float]:
    """POST /v1/recall, one keep-alive client, sequential: ms each."""
    import httpx

    times = []
    with httpx.Client(base_url=site.url, headers=auth(key), timeout=30) as client:
        for index in range(count):
            started = time.perf_counter()
            response = client.post("/v1/recall", json={"task": QUESTIONS[index % 400], "limit": 5})
            times.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return times


def measure_concurrency(
    args: argparse.Namespace, site: Site, key: str, assistant: str
) -> dict[str, Any]:
    """Recall's p50 idle, then while args.streams streams run against the slow fake."""
    idle = recall_timings(site, key, args.recalls)
    load = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve().parent / "assistants_bench" / "streams.py"),
            "--url",
            site.url,
            "--key",
            key,
            "--assistant",
            assistant,
            "--streams",
            str(args.streams),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(args.ramp)  # the streams are open and producing tokens
    busy = recall_timings(site, key, args.recalls)
    output, _ = load.communicate(timeout=600)
    streams = json.loads(output)
    return {"recall_idle_ms": idle, "recall_busy_ms": busy, "streams": streams}


def row(label: str, value: str) -> None:
    """One line of the report: a label, then its figure."""
    print(f"  {label:54s}{value}")


def verdict(value: float, target: float) -> str:
    return f"  {'PASS' if value <= target else 'MISS'} (<= {target:g})"


def report(args: argparse.Namespace, runs: dict[str, Any], load: dict[str, Any]) -> bool:
    """Conditions, numbers and PASS/MISS against the targets; whether all were met."""
    from django.conf import settings

    print("conditions")
    row("machine", f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    row("site", f"as `engramia serve`: gunicorn, {args.web_workers} uvicorn workers")
    row("", f"{settings.WEB_THREADS} Django threads each, 1 job worker")
    row("python", platform.python_version())
    row("database", f"embedded PostgreSQL under {args.home}")
    row("memory", f"150 patterns, embedder {args.embedder}")
    row("LLM", "loopback fake (Chat Completions), its own time subtracted per call")
    print(f"\nper run, ms: p50 (p95, max) over {args.runs} runs")
    checks = []
    for name, label, target in (
        ("stream_added_ms", "streamed run, added to the LLM's own time", 30.0),
        ("first_token_overhead_ms", "streamed run, first-token overhead", 20.0),
        ("job_added_ms", "job-executed run, added to the LLM's own time", 30.0),
        ("job_whole_ms", "the same, with learning and judging queued after", None),
        ("create_and_poll_ms", "create_and_poll wall time (queue pickup, polling)", None),
    ):
        p50 = percentile(runs[name], 0.5)
        row(label, summary(runs[name]) + ("" if target is None else verdict(p50, target)))
        if target is not None:
            checks.append(p50 <= target)
    idle, busy, streams = load["recall_idle_ms"], load["recall_busy_ms"], load["streams"]
    ratio = percentile(busy, 0.5) / percentile(idle, 0.5)
    delay, tokens = streams["token_delay"], streams["tokens"]
    print(
        f"\n{args.streams} concurrent streams; the fake sends {tokens} tokens, one every {delay} s"
    )
    row("POST /v1/recall idle, ms", summary(idle))
    row("POST /v1/recall during the streams, ms", summary(busy))
    row("recall p50 ratio, during / idle", f"{ratio:7.2f}" + verdict(ratio, 1.5))
    row("streams' first token after the request, ms", summary(streams["first_ms"]))
    total = streams["total_s"]
    row("streams' total time, s", f"{percentile(total, 0.5):7.2f} (max {max(total):.2f})")
    row("the fake alone per stream, s", f"{tokens * delay:7.2f}")
    row("streams completed", f"{streams['completed']}/{args.streams}")
    # A request that waited for a worker would show up as a first token or a recall that took
    # a multiple of what the others took.
    queued = max(streams["first_ms"]) > 1000 * delay * 5 or max(busy) > 1000
    row("a request waited for a free worker", "yes" if queued else "no")
    checks += [ratio <= 1.5, streams["completed"] == args.streams, not queued]
    print(f"\n{'all targets met' if all(checks) else 'TARGETS MISSED'}")
    return all(checks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embedder", choices=("hash", "local"), default="local")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--recalls", type=int, default=100)
    parser.add_argument("--ramp", type=float, default=2.0, help="seconds before timing recall")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--home", default=str(ROOT / ".engramia-bench" / "assistants"))
    args = parser.parse_args()
    configure(args)
    key, assistant = seed(args)
    from tests.fakes.llm_servers import FakeLLMServer

    with FakeLLMServer(default="Use the standard tool for it.") as fast:
        site = Site(args, fast.openai_base_url)
        try:
            site.wait_ready(key)
            runs = measure_runs(args, site, key, assistant, fast)
        finally:
            site.stop()
    slow = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.llm_servers", "--tokens", "20", "--token-delay", "0.1"],
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
