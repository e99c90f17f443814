"""mem0's side from the parent: its own virtualenv (a benchmark-only dependency, never the
project's), its database on the same PostgreSQL server as Engramia, and the subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .common import ROOT

# Pinned: the latest mem0ai on PyPI that resolves on Python 3.11, and the drivers its pgvector
# store needs, at the project's own psycopg version.
MEM0_PINS = (
    "mem0ai==2.2.1",
    "psycopg[binary]==3.3.9",
    "psycopg-pool==3.3.3",
    "numpy==2.4.6",
)
DATABASE = "mem0bench"
COLLECTION = "bench_memories"


def ensure_venv(directory: Path) -> Path:
    """mem0's virtualenv with the pinned packages (installed once; again when the pins change)."""
    python = directory / "bin" / "python"
    marker = directory / "pins.txt"
    wanted = "\n".join(MEM0_PINS)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    print(f"  creating mem0's virtualenv in {directory} ({', '.join(MEM0_PINS)})")
    # stdout is stderr under --json: pip's chatter must not reach the JSON document.
    subprocess.run(
        [sys.executable, "-m", "venv", "--clear", str(directory)], check=True, stdout=sys.stdout
    )
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *MEM0_PINS],
        check=True,
        stdout=sys.stdout,
    )
    marker.write_text(wanted)
    return python


def ensure_database(engramia_uri: str) -> str:
    """A database of its own for mem0 on Engramia's server; its URI."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(engramia_uri)
    with psycopg.connect(make_conninfo(**{**params, "dbname": "postgres"}), autocommit=True) as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
            c.execute(f'CREATE DATABASE "{DATABASE}"')
    uri = make_conninfo(**{**params, "dbname": DATABASE})
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return uri


def run(
    *, python: Path, database_uri: str, files: dict[str, str], preload: int, home: Path
) -> dict[str, Any]:
    """Run bench/compare_mem0.py in mem0's virtualenv; its JSON result."""
    mem0_home = home / "mem0"
    mem0_home.mkdir(parents=True, exist_ok=True)
    spec = {
        "root": str(ROOT),
        "dimensions": 384,
        "database_uri": database_uri,
        "collection": COLLECTION,
        "files": files,
        "preload": preload,
        "mem0_home": str(mem0_home),
    }
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENAI_", "ANTHROPIC_", "DJANGO_", "ENGRAMIA_"))
    }
    # Telemetry off: mem0 would otherwise send events to its analytics host (and fetch notices).
    env.update(MEM0_TELEMETRY="False", MEM0_DIR=str(mem0_home), PYTHONUNBUFFERED="1")
    completed = subprocess.run(
        [str(python), str(ROOT / "bench" / "compare_mem0.py")],
        input=json.dumps(spec),
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"mem0's side failed (exit {completed.returncode}); see stderr above")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    if result["network_attempts"]:
        raise RuntimeError(f"mem0 tried to reach the network: {result['network_attempts']}")
    return result
