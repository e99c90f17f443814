"""`engramia serve` on a fresh data directory: embedded database, migrations, admin login, API,
job worker, and a clean stop of everything on Ctrl-C — what `make run` does."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from engramia_site.embedded_db import embedded_server_pid

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, deadline: float) -> httpx.Response:
    while time.monotonic() < deadline:
        try:
            return httpx.get(url, timeout=2)
        except httpx.HTTPError:
            time.sleep(0.3)
    raise AssertionError(f"{url} never answered")


def test_serve_from_scratch_then_ctrl_c_stops_everything(tmp_path):
    home = tmp_path / "home"
    port = _free_port()
    env = {
        **os.environ,
        "ENGRAMIA_HOME": str(home),
        "ENGRAMIA_EMBEDDINGS": "hash",
        "DJANGO_SETTINGS_MODULE": "engramia_site.settings",
    }
    env.pop("ENGRAMIA_DATABASE_URL", None)
    log = (tmp_path / "serve.log").open("w+")
    server = subprocess.Popen(
        [sys.executable, "-m", "engramia.cli", "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        health = _wait_for(f"http://127.0.0.1:{port}/v1/health", time.monotonic() + 120)
        assert health.status_code == 200 and health.json()["pgvector"].startswith("0.")
        log.seek(0)
        output = log.read()
        login = re.search(r"user (\S+)\s+password (\S+)", output)
        assert login, output
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=True) as browser:
            page = browser.get("/admin/login/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
            response = browser.post(
                "/admin/login/?next=/admin/",
                data={
                    "username": login.group(1),
                    "password": login.group(2),
                    "csrfmiddlewaretoken": token,
                },
                headers={"Referer": f"http://127.0.0.1:{port}/admin/login/"},
            )
            assert response.status_code == 200 and "Curation and audit" in response.text
        assert embedded_server_pid(home) is not None
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=60)
    deadline = time.monotonic() + 30
    while embedded_server_pid(home) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert embedded_server_pid(home) is None
    # No process of this server group (gunicorn, workers, postgres) may outlive it.
    leftovers = subprocess.run(
        ["pgrep", "-a", "-f", "--", f"--port {port}|{home}"], capture_output=True, text=True
    )
    assert leftovers.returncode == 1, leftovers.stdout
