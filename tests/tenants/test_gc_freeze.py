"""Web workers freeze what they loaded at start, so no full garbage collection walks it again
(engramia_site.gc_freeze). Each check runs in a child process: freezing is process-wide."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def _child(code: str, env: dict[str, str] | None = None) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=180,
        env=env or dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_freezing_collects_first_then_leaves_nothing_for_the_collector_to_walk():
    report = _child(
        "import gc, json, weakref\n"
        "from engramia_site.gc_freeze import freeze_startup_objects\n"
        "class Node: pass\n"
        "gc.disable()\n"  # no automatic collection before the one being tested
        "kept = [[n] for n in range(5000)]\n"  # lists are tracked by the collector
        "cycle = Node(); cycle.self = cycle; dead = weakref.ref(cycle); del cycle\n"
        "frozen = freeze_startup_objects()\n"
        "print(json.dumps({'frozen': frozen, 'tracked': len(gc.get_objects()),\n"
        "                  'cycle_freed': dead() is None}))"
    )
    # Garbage is collected before freezing, not frozen with the rest.
    assert report["cycle_freed"] is True
    assert report["frozen"] >= 5000
    assert report["tracked"] < 100  # only what the print itself made


@pytest.mark.django_db
def test_a_web_worker_freezes_what_it_loaded_at_start():
    from django.conf import settings

    from tests.jobs.conftest import worker_database_url

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "engramia_site.settings_test",
        "ENGRAMIA_DATABASE_URL": worker_database_url(),
        "ENGRAMIA_HOME": str(settings.ENGRAMIA_HOME),
        "ENGRAMIA_LOG_LEVEL": "WARNING",
    }
    report = _child(
        "import gc, json\n"
        "import engramia_site.asgi as worker\n"
        "print(json.dumps({'frozen': worker.frozen_at_start,\n"
        "                  'count': gc.get_freeze_count(), 'tracked': len(gc.get_objects())}))",
        env,
    )
    # Django, the providers' SDKs and the rest: far more than a worker makes per request.
    assert report["frozen"] > 100_000
    assert report["count"] > 100_000  # frozen objects freed later leave the count
    assert report["tracked"] < report["frozen"] // 20
