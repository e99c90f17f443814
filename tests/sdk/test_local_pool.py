"""Local mode pools its connections when it sets Django up itself: the async twins (worker
threads) borrow one per call instead of opening a new one each time.

Run in a child process, as an application would: the suite's own process has Django set up by
pytest-django, where local mode leaves the settings alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engramia.local import LOCAL_POOL_SIZE

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db(transaction=True)

CALLS = 20

# Counts the connections psycopg opens: Django's own (psycopg.connect) and the pool's
# (Connection.connect), during CALLS awaited recalls after a first learn.
PROGRAM = f"""
import asyncio, json, os
from engramia import Memory
from tests.fakes.connect_counter import count_connects

opened = count_connects()
memory = Memory(project="pooled/app")
memory.learn(task="rotate the api keys every quarter", code="rotate()", eval_score=8.0)
from django.db import connection
if connection.pool is not None:
    connection.pool.wait(timeout=30)  # the connections it opens at start are open

async def calls():
    found = []
    for _ in range({CALLS}):
        found.append(len(await memory.arecall("rotate the api keys", limit=3)))
    return found

before = len(opened)
found = asyncio.run(calls())
from django.conf import settings
print(json.dumps({{
    "opened": len(opened) - before,
    "found": found,
    "pool": settings.DATABASES["default"]["OPTIONS"].get("pool"),
    "variable": os.environ.get("ENGRAMIA_DB_POOL_SIZE"),
}}))
memory.close()
"""


def run_program(extra: dict[str, str], program: str = PROGRAM) -> dict:
    from django.conf import settings

    from tests.jobs.conftest import worker_database_url

    env = {key: value for key, value in os.environ.items() if key != "ENGRAMIA_DB_POOL_SIZE"} | {
        "DJANGO_SETTINGS_MODULE": "engramia_site.settings_test",
        "ENGRAMIA_DATABASE_URL": worker_database_url(),
        "ENGRAMIA_HOME": str(settings.ENGRAMIA_HOME),
        "ENGRAMIA_LOG_LEVEL": "WARNING",
        "ENGRAMIA_LOCAL_JOBS": "off",
        **extra,
    }
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_async_calls_borrow_pooled_connections_instead_of_opening_one_each():
    report = run_program({})
    assert report["found"] == [1] * CALLS
    assert report["pool"]["max_size"] == LOCAL_POOL_SIZE
    # The pool opened its first connections when it started; no call opens another.
    assert report["opened"] == 0
    # Set only while the settings were read: a process this one starts does not inherit it.
    assert report["variable"] is None


def test_a_pool_size_of_zero_keeps_a_connection_per_call():
    report = run_program({"ENGRAMIA_DB_POOL_SIZE": "0"})
    assert report["found"] == [1] * CALLS
    assert report["pool"] is None
    assert report["opened"] == CALLS
    assert report["variable"] == "0"


# Every pooled connection is held (the main thread's, inside a transaction) while a worker
# thread asks for one.
EXHAUSTED = """
import asyncio, json
from django.db import transaction
from engramia import Memory
from engramia.errors import EngramiaServiceUnavailableError

memory = Memory(project="pooled/app")
memory.learn(task="rotate the api keys every quarter", code="rotate()", eval_score=8.0)
with transaction.atomic():
    memory.recall("rotate the api keys", limit=3)  # keeps the only connection
    try:
        asyncio.run(memory.arecall("rotate the api keys", limit=3))
        outcome = {"raised": None}
    except EngramiaServiceUnavailableError as exc:
        outcome = {"raised": type(exc).__name__, "status": exc.status, "detail": exc.detail}
print(json.dumps(outcome))
memory.close()
"""


def test_a_call_that_finds_every_connection_busy_is_a_typed_503():
    report = run_program({"ENGRAMIA_DB_POOL_SIZE": "1", "ENGRAMIA_DB_POOL_TIMEOUT": "1"}, EXHAUSTED)
    assert report["raised"] == "EngramiaServiceUnavailableError"
    assert report["status"] == 503
    assert report["detail"].startswith("The database is unavailable: ")


# A child forked after the first call: its calls must neither fail nor disturb the parent's
# connections (the sockets it inherited are the parent's).
FORKED = """
import asyncio, json, os
from engramia import Memory

memory = Memory(project="pooled/app")
memory.learn(task="rotate the api keys every quarter", code="rotate()", eval_score=8.0)
asyncio.run(memory.arecall("rotate the api keys", limit=3))

def calls():
    found = []
    for _ in range(40):  # parent and child at the same time
        found.append(len(memory.recall("rotate the api keys", limit=1)))
        found.append(len(asyncio.run(memory.arecall("rotate the api keys", limit=1))))
    return sorted(set(found))

read, write = os.pipe()
child = os.fork()
if child == 0:
    os.close(read)
    try:
        try:
            outcome = calls()
            memory.learn(task="renew the tls certificates", code="renew()", eval_score=7.0)
        except Exception as exc:
            outcome = repr(exc)[:300]
        os.write(write, json.dumps(outcome).encode())
    finally:
        os._exit(0)
os.close(write)
try:
    parent = calls()
except Exception as exc:
    parent = repr(exc)[:300]
child_outcome = json.loads(os.read(read, 4000) or b"null")
os.waitpid(child, 0)
after = len(memory.recall("renew the tls certificates", limit=3))
print(json.dumps({"child": child_outcome, "parent": parent, "after": after}))
memory.close()
"""


def test_a_forked_child_opens_its_own_connections_and_the_parent_keeps_working():
    report = run_program({}, FORKED)
    assert report["child"] == [1]
    assert report["parent"] == [1]
    # The parent sees the pattern its child learned, over its own connections.
    assert report["after"] == 2
