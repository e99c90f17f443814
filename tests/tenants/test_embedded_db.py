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


def _run(home: Path, code: str, **kwargs) -> subprocess.Popen:
    env = {
        **os.environ,
        "ENGRAMIA_HOME": str(home),
        "DJANGO_SETTINGS_MODULE": "engramia_site.settings",
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
