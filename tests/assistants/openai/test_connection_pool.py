"""With a connection pool (ENGRAMIA_DB_POOL_SIZE, as `engramia serve` runs its web workers), an
open stream holds no database connection while it waits on the model: more streams than the
pool has connections run at once, and the rest of the API still answers meanwhile."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.assistants.openai.conftest import BASE, new_assistant, new_thread
from tests.fakes.llm_servers import Reply

POOL_SIZE = 3
STREAMS = 8


@pytest.fixture
def pooled(transactional_db: Any) -> Iterator[None]:
    """The default database behind a small pool, for this test's server threads."""
    from django.db import connections

    connection = connections["default"]
    saved = (connection.settings_dict["CONN_MAX_AGE"], dict(connection.settings_dict["OPTIONS"]))
    connection.close()
    connection.settings_dict["CONN_MAX_AGE"] = 0
    connection.settings_dict["OPTIONS"]["pool"] = {
        "min_size": 1,
        "max_size": POOL_SIZE,
        "timeout": 2,
    }
    try:
        yield
    finally:
        connection.close()
        connection.close_pool()
        connection.settings_dict["CONN_MAX_AGE"], connection.settings_dict["OPTIONS"] = saved


def _stream(base: str, secret: str, thread_id: str, assistant_id: str, out: list[Any]) -> None:
    body = {"assistant_id": assistant_id, "stream": True}
    headers = {"Authorization": f"Bearer {secret}"}
    url = f"{base}{BASE}/threads/{thread_id}/runs"
    with httpx.stream("POST", url, json=body, headers=headers, timeout=60) as response:
        events = [line for line in response.iter_lines() if line.startswith("event: ")]
    out.append((response.status_code, events[-1] if events else None))


def test_more_streams_than_pooled_connections_run_at_once(pooled, asgi_server, api, owner, llm):
    assistant = new_assistant(api)
    threads = [new_thread(api, f"question {index}") for index in range(STREAMS)]
    # Each answer streams for about 4 s, twice as long as a request waits for a connection.
    llm.default = Reply(text="one two three four five six seven eight", token_delay=0.5)
    results: list[Any] = []
    workers = [
        threading.Thread(
            target=_stream, args=(asgi_server, owner.secret, t["id"], assistant["id"], results)
        )
        for t in threads
    ]
    for worker in workers:
        worker.start()
    headers = {"Authorization": f"Bearer {owner.secret}"}
    # While every stream is open, the API still gets connections.
    listed = [
        httpx.get(f"{asgi_server}{BASE}/threads", headers=headers, timeout=30).status_code
        for _ in range(5)
    ]
    for worker in workers:
        worker.join(timeout=60)
    assert listed == [200] * 5
    assert sorted(results) == [(200, "event: done")] * STREAMS


def _settings_in_a_process(**env: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "d = settings.DATABASES['default']; pool = d['OPTIONS'].get('pool'); "
        "pool = pool and {k: getattr(v, '__qualname__', v) for k, v in pool.items()}; "
        "print(d['CONN_MAX_AGE'], pool)"
    )
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "engramia_site.settings", **env}
    return subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=60
    )


def test_the_pool_size_setting():
    pooled = _settings_in_a_process(ENGRAMIA_DB_POOL_SIZE="7")
    assert pooled.returncode == 0, pooled.stderr
    assert pooled.stdout.split(" ", 1) == [
        "0",
        "{'min_size': 2, 'max_size': 7, 'timeout': 10, 'max_idle': 300}\n",
    ]
    unpooled = _settings_in_a_process(ENGRAMIA_DB_POOL_SIZE="0")
    assert unpooled.stdout.strip() == "60 None"
    wrong = _settings_in_a_process(ENGRAMIA_DB_POOL_SIZE="many")
    assert wrong.returncode != 0
    assert "ENGRAMIA_DB_POOL_SIZE='many' is not an integer" in wrong.stderr


def test_serve_gives_its_web_workers_a_pool_unless_told_otherwise():
    from tenants.management.commands.serve import WEB_POOL_SIZE, web_environment

    assert web_environment({"A": "1"}) == {"A": "1", "ENGRAMIA_DB_POOL_SIZE": str(WEB_POOL_SIZE)}
    assert web_environment({"ENGRAMIA_DB_POOL_SIZE": "0"})["ENGRAMIA_DB_POOL_SIZE"] == "0"
