"""Benchmark MCP recall over streamable HTTP against the same recall over REST.

Starts the site as `engramia serve` does (gunicorn, uvicorn workers, engramia_site.asgi: /v1 on
Django's thread pool, /mcp mounted beside it) on its own embedded database, seeds one project,
then times, interleaved request by request with one keep-alive client each:

- `POST /v1/recall` (REST);
- `tools/call recall` posted to /mcp as a JSON-RPC message (what any MCP client sends);
- the same call through the `mcp` SDK's own client (its protocol handling included).

Each surface gets its own query texts drawn from one pool, so none is served from a query-vector
cache the other warmed. The MCP call does what REST does plus the MCP envelope and its audit
entry (one row per call, written after the recall). Target (issue 15): MCP p50 within 3 ms of
REST p50.

Run: .venv/bin/python bench/mcp_recall.py [--patterns 2000] [--requests 300] [--embedder hash|local]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TENANT, PROJECT = "bench-mcp", "main"
TARGET_MS = 3.0
WORDS = [
    "parse", "csv", "retry", "http", "backoff", "resize", "image", "rotate", "logs", "deploy",
    "staging", "refund", "payment", "summarise", "report", "translate", "invoice", "schedule",
    "meeting", "escalate", "ticket", "cache", "query", "index", "vector", "compress", "archive",
    "upload", "bucket", "notify", "slack", "migrate", "schema", "rollback", "release",
]  # fmt: skip


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def configure(args: argparse.Namespace) -> None:
    """Django on the bench's own data dir (its own embedded server) and embedder."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "engramia_site.settings"
    os.environ["ENGRAMIA_HOME"] = str(Path(args.home).resolve())
    os.environ["ENGRAMIA_EMBEDDINGS"] = args.embedder
    os.environ["ENGRAMIA_LOG_LEVEL"] = "WARNING"
    os.environ.pop("ENGRAMIA_DATABASE_URL", None)
    Path(args.home).mkdir(parents=True, exist_ok=True)
    import django

    django.setup()


def texts(count: int, seed: int) -> list[str]:
    """Short task texts (6-12 words) from one vocabulary."""
    generator = random.Random(seed)
    return [" ".join(generator.choices(WORDS, k=generator.randint(6, 12))) for _ in range(count)]


def seed_project(patterns: int) -> str:
    """Migrate, fill the bench project with patterns; a fresh project-scoped reader key."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from memory.models import Pattern
    from memory.services.learn_bulk import LearnItem, learn_patterns_bulk
    from tenants.choices import Role
    from tenants.models import ApiKey
    from tenants.services import create_api_key, ensure_project, set_membership

    call_command("migrate", interactive=False, verbosity=0)
    project = ensure_project(TENANT, PROJECT, actor=None)
    if Pattern.objects.filter(project=project).count() != patterns:
        Pattern.objects.filter(project=project).delete()
        items = [
            LearnItem(task=task, code=f"solution {index}", external_id=f"bench-{index}")
            for index, task in enumerate(texts(patterns, seed=1))
        ]
        learn_patterns_bulk(project=project, items=items, actor=None)
    user, _ = get_user_model().objects.get_or_create(
        username="bench-mcp@localhost", defaults={"email": "bench-mcp@localhost"}
    )
    set_membership(user=user, scope=project, role=Role.READER, actor=None)
    ApiKey.objects.filter(user=user).delete()
    return create_api_key(
        user=user, tenant=project.tenant, project=project, name="bench-mcp", role=Role.READER,
        actor=None,
    ).secret  # fmt: skip


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], int]:
    """The site as `engramia serve` runs it (its web command), on a free port."""
    from django.conf import settings

    from tenants.management.commands.serve import web_command

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = dict(
        os.environ,
        ENGRAMIA_DATABASE_URL=settings.DATABASE_URL,
        ENGRAMIA_API_THROTTLE="100000000/min",
    )
    command = web_command(
        host="127.0.0.1", port=port, web_workers=args.web_workers, home=Path(args.home)
    )
    log = (Path(args.home) / "server.log").open("wb")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return server, port


def _mcp_body(index: int, task: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": index,
        "method": "tools/call",
        "params": {"name": "recall", "arguments": {"task": task, "limit": 5}},
    }


def measure_raw(base: str, secret: str, rest_texts: list[str], mcp_texts: list[str]) -> dict:
    """REST and raw MCP, interleaved (alternating which goes first); ms per request."""
    import httpx

    rest, mcp = [], []
    mcp_headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-11-25",
    }
    auth = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=base, headers=auth, timeout=30) as client:
        for index, (rest_task, mcp_task) in enumerate(zip(rest_texts, mcp_texts, strict=True)):
            order = ("rest", "mcp") if index % 2 == 0 else ("mcp", "rest")
            for surface in order:
                begin = time.perf_counter()
                if surface == "rest":
                    response = client.post("/v1/recall", json={"task": rest_task, "limit": 5})
                    response.raise_for_status()
                    rest.append((time.perf_counter() - begin) * 1000)
                else:
                    response = client.post(
                        "/mcp", json=_mcp_body(index, mcp_task), headers=mcp_headers
                    )
                    response.raise_for_status()
                    assert not response.json()["result"]["isError"], response.text
                    mcp.append((time.perf_counter() - begin) * 1000)
    return {"rest": rest, "mcp": mcp}


def measure_sdk(base: str, secret: str, tasks: list[str]) -> list[float]:
    """The same recall through the mcp SDK's Client (one connection, negotiated once)."""
    import anyio
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async def run() -> list[float]:
        samples = []
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {secret}"}, timeout=30)
        async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http)) as c:
            for task in tasks:
                begin = time.perf_counter()
                result = await c.call_tool("recall", {"task": task, "limit": 5})
                samples.append((time.perf_counter() - begin) * 1000)
                assert not result.is_error, result
        return samples

    return anyio.run(run)


def wait_until_up(base: str, secret: str, server: subprocess.Popen[bytes], home: str) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while True:
        try:
            response = httpx.post(
                f"{base}/v1/recall",
                json={"task": "warm up"},
                headers={"Authorization": f"Bearer {secret}"},
            )
            if response.status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            raise RuntimeError(f"the server did not answer; see {home}/server.log")
        time.sleep(0.3)


def row(name: str, samples: list[float]) -> str:
    mean = sum(samples) / len(samples)
    return (
        f"  {name:34s} {percentile(samples, 0.5):7.2f} {percentile(samples, 0.95):7.2f} "
        f"{mean:7.2f} {len(samples):6d}"
    )


def conditions(args: argparse.Namespace) -> None:
    from importlib.metadata import version

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print("conditions")
    print(f"  cpu          {cpu}, {os.cpu_count()} cores, load {os.getloadavg()}")
    print(f"  python       {platform.python_version()}  mcp {version('mcp')}")
    print(f"  server       gunicorn + uvicorn workers x{args.web_workers} (engramia serve's)")
    print("  database     embedded PostgreSQL on this machine")
    print(f"  project      {args.patterns} patterns, embedder {args.embedder}, recall limit 5")
    print(
        f"  requests     {args.requests} per surface after {args.warmup} warm-up, "
        "one keep-alive client each, interleaved"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patterns", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--embedder", choices=("hash", "local"), default="hash")
    parser.add_argument("--web-workers", type=int, default=1)
    parser.add_argument("--home", default=".engramia-bench/mcp")
    args = parser.parse_args()
    configure(args)
    secret = seed_project(args.patterns)
    server, port = start_server(args)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, secret, server, args.home)
        pool = texts(args.warmup * 2 + args.requests * 3, seed=2)
        warm, pool = pool[: args.warmup * 2], pool[args.warmup * 2 :]
        measure_raw(base, secret, warm[: args.warmup], warm[args.warmup :])
        n = args.requests
        raw = measure_raw(base, secret, pool[:n], pool[n : 2 * n])
        sdk = measure_sdk(base, secret, pool[2 * n : 3 * n])
    finally:
        server.terminate()
        server.wait(timeout=30)
    conditions(args)
    print(f"\n  {'recall (ms)':34s} {'p50':>7s} {'p95':>7s} {'mean':>7s} {'n':>6s}")
    print(row("REST POST /v1/recall", raw["rest"]))
    print(row("MCP tools/call over /mcp (raw)", raw["mcp"]))
    print(row("MCP through the mcp SDK Client", sdk))
    overhead = percentile(raw["mcp"], 0.5) - percentile(raw["rest"], 0.5)
    verdict = "PASS" if overhead <= TARGET_MS else "MISS"
    print(f"\n  MCP p50 - REST p50 = {overhead:+.2f} ms (target <= {TARGET_MS} ms): {verdict}")
    sdk_overhead = percentile(sdk, 0.5) - percentile(raw["rest"], 0.5)
    print(f"  with the SDK client's own work: {sdk_overhead:+.2f} ms")


if __name__ == "__main__":
    main()
