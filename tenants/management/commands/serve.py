"""engramia serve: migrate, then the web server and job worker(s) as one supervised group."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from engramia_site.database_check import verify_database
from engramia_site.request_context import acting_as

STOP_GRACE_SECONDS = 10
# A Unix socket path must fit in sun_path (108 bytes on Linux, 104 on the BSDs).
MAX_SOCKET_PATH_BYTES = 100


def control_socket_args(home: Path) -> list[str]:
    """gunicorn's control socket for this instance: under ENGRAMIA_HOME, or none at all.

    gunicorn's default ($XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl) is shared
    by every gunicorn of the user, and an instance that stops removes it from under the others.
    """
    path = home / "gunicorn.ctl"
    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        return ["--no-control-socket"]
    return ["--control-socket", str(path)]


# Database connections each web worker may hold at once (ENGRAMIA_DB_POOL_SIZE overrides it):
# every request borrows one, and so does an open stream while it reads or writes.
WEB_POOL_SIZE = 20


def web_environment(env: dict[str, str]) -> dict[str, str]:
    """The web workers' environment: a connection pool each, unless ENGRAMIA_DB_POOL_SIZE is set."""
    return {"ENGRAMIA_DB_POOL_SIZE": str(WEB_POOL_SIZE), **env}


def web_command(*, host: str, port: int, web_workers: int, home: Path) -> list[str]:
    """The web server serve runs: gunicorn with uvicorn workers on engramia_site.asgi."""
    return [
        *(sys.executable, "-m", "gunicorn", "engramia_site.asgi:application"),
        *("--bind", f"{host}:{port}", "--workers", str(web_workers)),
        # ASGI: streamed responses and MCP sessions wait on the event loop, not a thread;
        # Django's views run on each worker's fixed thread pool (engramia_site.asgi).
        *("--worker-class", "uvicorn_worker.UvicornWorker"),
        *("--timeout", "120", "--graceful-timeout", "10", "--access-logfile", "-"),
        *control_socket_args(home),
    ]


def ensure_admin_login() -> tuple[str, str] | None:
    """Create a local superuser 'admin' when there is none; return (user, password) if created."""
    user_model = get_user_model()
    if user_model.objects.filter(is_superuser=True).exists():
        return None
    password = secrets.token_urlsafe(12)
    user_model.objects.create_superuser(
        username="admin", email="admin@localhost", password=password
    )
    return "admin", password


class Command(BaseCommand):
    help = "Migrate, then serve the API and admin with job worker(s); Ctrl-C stops everything."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1, help="job worker processes")
        parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["workers"] < 0 or options["web_workers"] < 1:
            raise CommandError("--workers must be >= 0 and --web-workers >= 1")
        if not 0 < options["port"] < 65536:
            raise CommandError("--port must be between 1 and 65535")
        verify_database()
        with acting_as(label="serve"):
            call_command("migrate", interactive=False, verbosity=0)
            created = ensure_admin_login()
        if created:
            self.stdout.write(
                f"admin login created (shown once): user {created[0]}  password {created[1]}"
            )
        self.stdout.write(
            f"Engramia on http://{options['host']}:{options['port']}  "
            f"(admin /admin/, API /v1/, docs /v1/docs, MCP /mcp)"
        )
        self._supervise(options)

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        # Children use the server this process holds: the embedded server stops when we exit.
        env["ENGRAMIA_DATABASE_URL"] = settings.DATABASE_URL
        env["DJANGO_SETTINGS_MODULE"] = "engramia_site.settings"
        return env

    def _supervise(self, options: dict[str, Any]) -> None:
        env = self._child_env()
        commands = [
            web_command(
                host=options["host"],
                port=options["port"],
                web_workers=options["web_workers"],
                home=settings.ENGRAMIA_HOME,
            )
        ]
        for _ in range(options["workers"]):
            commands.append([sys.executable, "-m", "engramia.cli", "qcluster"])
        web_env = web_environment(env)
        children = [
            subprocess.Popen(command, env=web_env if index == 0 else env)
            for index, command in enumerate(commands)
        ]
        stopping = False

        def _stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        exit_code = 0
        try:
            while not stopping:
                for child in children:
                    if child.poll() is not None:
                        self.stderr.write(f"{child.args!r} exited with {child.returncode}")
                        exit_code = child.returncode or 1
                        stopping = True
                time.sleep(0.2)
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            for child in children:
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
            self.stdout.write("stopped")
        if exit_code:
            raise SystemExit(exit_code)
