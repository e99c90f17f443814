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

import pytest

from engramia.local import LOCAL_POOL_SIZE

pytestmark = pytest.mark.django_db(transaction=True)

CALLS = 20

# Counts the connections psycopg opens: Django's own (psycopg.connect) and the pool's
# (Connection.connect), during CALLS awaited recalls after a first learn.
PROGRAM = f"""
import asyncio, json, os
import psycopg
from engramia import Memory

opened = []
module_connect = psycopg.connect
class_connect = psycopg.Connection.connect.__func__

def counted(*args, **kwargs):
    opened.append(1)
    return module_connect(*args, **kwargs)

def counted_class(cls, *args, **kwargs):
    opened.append(1)
    return class_connect(cls, *args, **kwargs)

psycopg.connect = counted
psycopg.Connection.connect = classmethod(counted_class)

memory = Memory(project="pooled/app")
memory.learn(task="rotate the api keys every quarter", code="rotate()", eval_score=8.0)

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


def run_program(extra: dict[str, str]) -> dict:
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
        [sys.executable, "-W", "error::ResourceWarning", "-c", PROGRAM],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_async_calls_borrow_pooled_connections_instead_of_opening_one_each():
    report = run_program({})
    assert report["found"] == [1] * CALLS
    assert report["pool"]["max_size"] == LOCAL_POOL_SIZE
    # The pool opens its first two connections when it starts; no call opens another.
    assert report["opened"] <= 2
    # Set only while the settings were read: a process this one starts does not inherit it.
    assert report["variable"] is None


def test_a_pool_size_of_zero_keeps_a_connection_per_call():
    report = run_program({"ENGRAMIA_DB_POOL_SIZE": "0"})
    assert report["found"] == [1] * CALLS
    assert report["pool"] is None
    assert report["opened"] == CALLS
    assert report["variable"] == "0"
