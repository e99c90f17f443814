"""`engramia serve` on a fresh data directory: embedded database, migrations, admin login, API,
job worker, and a clean stop of everything on Ctrl-C — what `make run` does."""

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx
from gunicorn.ctl.client import ControlClient

from engramia_site.embedded_db import embedded_server_pid

REPO = Path(__file__).resolve().parents[2]
SERVE = [sys.executable, "-m", "engramia.cli", "serve"]


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


def _start_serve(
    home: Path, port: int, log: IO[str], *, workers: int = 1, runtime_dir: Path | None = None
) -> subprocess.Popen:
    """`engramia serve` on its own data directory and embedded database, in its own group."""
    env = {
        **os.environ,
        "ENGRAMIA_HOME": str(home),
        "ENGRAMIA_EMBEDDINGS": "hash",
        "DJANGO_SETTINGS_MODULE": "engramia_site.settings",
    }
    env.pop("ENGRAMIA_DATABASE_URL", None)
    if runtime_dir is not None:
        env["XDG_RUNTIME_DIR"] = str(runtime_dir)
    return subprocess.Popen(
        [*SERVE, "--port", str(port), "--workers", str(workers)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_serve_from_scratch_then_ctrl_c_stops_everything(tmp_path):
    home = tmp_path / "home"
    port = _free_port()
    log = (tmp_path / "serve.log").open("w+")
    server = _start_serve(home, port, log)
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
            assert response.status_code == 200 and 'id="stat-live"' in response.text
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


def _stop_serve(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGINT)
    server.wait(timeout=60)


def _listening_port(control_socket: Path) -> int:
    """The port of the gunicorn that answers on control_socket."""
    with ControlClient(str(control_socket), timeout=10) as client:
        listeners = client.send_command("show listeners")["listeners"]
    return int(listeners[0]["address"].rsplit(":", 1)[1])


def test_two_instances_keep_their_own_gunicorn_control_sockets(tmp_path):
    # gunicorn's default control socket is $XDG_RUNTIME_DIR/gunicorn.ctl, shared by every
    # gunicorn of the user: a second instance would take it over and remove it when it stops.
    shared_runtime = tmp_path / "runtime"
    shared_runtime.mkdir()
    instances = {name: (tmp_path / name, _free_port()) for name in ("first", "second")}
    servers = {
        name: _start_serve(
            home, port, (tmp_path / f"{name}.log").open("w"), workers=0, runtime_dir=shared_runtime
        )
        for name, (home, port) in instances.items()
    }
    try:
        deadline = time.monotonic() + 180
        for home, port in instances.values():
            assert _wait_for(f"http://127.0.0.1:{port}/v1/health", deadline).status_code == 200
            # gunicorn opens its control socket just after its workers start serving.
            control_socket = home / "gunicorn.ctl"
            candidates = (control_socket, shared_runtime / "gunicorn.ctl")
            while not any(path.exists() for path in candidates) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert stat.S_ISSOCK(control_socket.stat().st_mode)
            assert _listening_port(control_socket) == port
        assert list(shared_runtime.iterdir()) == []

        _stop_serve(servers["second"])
        first_home, first_port = instances["first"]
        assert _listening_port(first_home / "gunicorn.ctl") == first_port
        assert not (instances["second"][0] / "gunicorn.ctl").exists()
    finally:
        for server in servers.values():
            _stop_serve(server)


def test_a_home_too_deep_for_a_unix_socket_turns_the_control_socket_off():
    from tenants.management.commands.serve import control_socket_args

    assert control_socket_args(Path("/srv/engramia")) == [
        "--control-socket",
        "/srv/engramia/gunicorn.ctl",
    ]
    assert control_socket_args(Path("/srv/" + "d" * 120)) == ["--no-control-socket"]
