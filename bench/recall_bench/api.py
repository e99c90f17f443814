"""The HTTP API: a real gunicorn on 127.0.0.1, a reader key, and POST /v1/recall timed through
one keep-alive client."""

from __future__ import annotations

import argparse
import math
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from . import ROOT
from .dataset import TENANT, ProjectSpec
from .report import ms_since, percentile
from .sql import LIMIT

KEY_NAME = "bench-recall"


class ApiServer:
    """The gunicorn this bench starts (once, on first use) and the requests it times."""

    def __init__(self, args: argparse.Namespace, home: Path) -> None:
        self.args = args
        self.home = home
        self.server: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> None:
        """The web server `engramia serve` runs (gunicorn, uvicorn workers, a connection pool
        each), on 127.0.0.1 with the bench's own throttle."""
        from django.conf import settings

        from tenants.management.commands.serve import web_command, web_environment

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        env = web_environment(
            dict(
                os.environ,
                ENGRAMIA_DATABASE_URL=settings.DATABASE_URL,
                ENGRAMIA_API_THROTTLE="1000000/min",
                ENGRAMIA_LOG_LEVEL="WARNING",
            )
        )
        command = web_command(
            host="127.0.0.1", port=self.port, web_workers=self.args.web_workers, home=self.home
        )
        log = (self.home / "gunicorn.log").open("wb")
        self.server = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )

    def stop(self) -> None:
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
        set_membership(user=user, scope=tenant, role=Role.OWNER, actor=None)
        ApiKey.objects.filter(user=user, name=KEY_NAME).delete()
        return create_api_key(
            user=user, tenant=tenant, project=None, name=KEY_NAME, role=Role.READER, actor=None
        ).secret

    def measure(
        self,
        report: dict[str, Any],
        api_queries: dict[str, list[tuple[ProjectSpec, str, list[int]]]],
    ) -> None:
        """POST /v1/recall through gunicorn with the same queries (new to the server's cache)."""
        import httpx

        secret = self.api_key()
        if self.server is None:
            self.start()
        base = f"http://127.0.0.1:{self.port}"
        headers = {"Authorization": f"Bearer {secret}"}
        print(
            f"\n  recall through the HTTP API (engramia serve's web server: gunicorn, "
            f"{self.args.web_workers} uvicorn workers, one keep-alive client, "
            f"{self.args.api_requests} requests per bucket; ms)"
        )
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            deadline = time.monotonic() + 90
            first = next(iter(api_queries.values()))[0][0].slug
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
            for name, queries in api_queries.items():
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
