"""The embedded server: dead handles are pruned so the last real user still stops it."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engramia_site.embedded_db import _prune_dead_handles, embedded_server_pid

REPO = Path(__file__).resolve().parents[2]


def test_prune_drops_dead_pids_and_keeps_live_ones(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".handle_pids.json").write_text(json.dumps([os.getpid(), dead.pid]))
    assert _prune_dead_handles(tmp_path) == [os.getpid()]
    assert json.loads((tmp_path / ".handle_pids.json").read_text()) == [os.getpid()]


def _run(home: Path, code: str, env_extra: dict | None = None, **kwargs) -> subprocess.Popen:
    env = {
        **os.environ,
        "ENGRAMIA_HOME": str(home),
        "DJANGO_SETTINGS_MODULE": "engramia_site.settings",
        **(env_extra or {}),
    }
    env.pop("ENGRAMIA_DATABASE_URL", None)
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=REPO, **kwargs)


HOLD = (
    "import django, time, sys; django.setup(); "
    "from django.db import connection; connection.ensure_connection(); "
    "print('ready', flush=True); time.sleep(120)"
)


def test_sigterm_and_sigkill_do_not_leave_the_server_running(tmp_path):
    home = tmp_path / "home"
    killed = _run(home, HOLD, stdout=subprocess.PIPE, text=True)
    assert killed.stdout.readline().strip() == "ready"
    assert embedded_server_pid(home) is not None
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    # The dead holder's pid is still in the handle file; a new user prunes it and, on SIGTERM,
    # exits normally, so as the last real user it stops the server.
    survivor = _run(home, HOLD, stdout=subprocess.PIPE, text=True)
    assert survivor.stdout.readline().strip() == "ready"
    survivor.send_signal(signal.SIGTERM)
    survivor.wait(timeout=60)
    deadline = time.monotonic() + 30
    while embedded_server_pid(home) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert embedded_server_pid(home) is None


def test_shared_buffers_is_a_quarter_of_memory_within_bounds():
    from engramia_site.embedded_db import shared_buffers_setting

    gib = 2**30
    assert shared_buffers_setting(24 * gib) == "2048MB"
    assert shared_buffers_setting(4 * gib) == "1024MB"
    assert shared_buffers_setting(256 * 2**20) == "128MB"


SHOW = (
    "import django; django.setup(); from django.db import connection; "
    "cursor = connection.cursor(); cursor.execute('SHOW shared_buffers'); "
    "print(cursor.fetchone()[0], flush=True)"
)


def test_the_embedded_server_takes_its_shared_buffers_from_the_next_start(tmp_path):
    home = tmp_path / "home"
    env = {"ENGRAMIA_DB_SHARED_BUFFERS": "192MB"}
    first = _run(home, SHOW, stdout=subprocess.PIPE, text=True, env_extra=env)
    assert first.communicate(timeout=120)[0].strip() == "128MB"  # sized when it started
    second = _run(home, SHOW, stdout=subprocess.PIPE, text=True, env_extra=env)
    assert second.communicate(timeout=120)[0].strip() == "192MB"
    bad = _run(
        home,
        SHOW,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env_extra={"ENGRAMIA_DB_SHARED_BUFFERS": "lots"},
    )
    _, err = bad.communicate(timeout=120)
    assert bad.returncode != 0 and "ENGRAMIA_DB_SHARED_BUFFERS='lots'" in err


def test_the_embedded_server_reads_its_buffers_back_after_a_restart(tmp_path):
    # pg_prewarm's autoprewarm, preloaded from the second start on: it notes the blocks in
    # shared_buffers and reads them back when the server starts again.
    home = tmp_path / "home"
    show = (
        "import django; django.setup(); from django.db import connection; "
        "cursor = connection.cursor(); cursor.execute('SHOW shared_preload_libraries'); "
        "print(cursor.fetchone()[0]); "
        "cursor.execute(\"SELECT current_setting('pg_prewarm.autoprewarm', true)\"); "
        "print(cursor.fetchone()[0], flush=True)"
    )
    first = _run(home, show, stdout=subprocess.PIPE, text=True)
    libraries, autoprewarm = first.communicate(timeout=120)[0].splitlines()
    assert "pg_prewarm" not in libraries and autoprewarm == "None"  # recorded for next time
    second = _run(home, show, stdout=subprocess.PIPE, text=True)
    libraries, autoprewarm = second.communicate(timeout=120)[0].splitlines()
    assert "pg_prewarm" in libraries and autoprewarm == "on"
