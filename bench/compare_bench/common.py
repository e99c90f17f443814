"""Helpers both sides of the comparison use; stdlib only, so mem0's own virtualenv can import
this module without Engramia's dependencies."""

from __future__ import annotations

import importlib.util
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from recall_bench.report import ms_since, percentile

__all__ = [
    "LIMIT",
    "ROOT",
    "NetworkGuard",
    "hash_embedder",
    "load_embeddings",
    "ms_since",
    "percentile",
    "summarise_learn",
    "summarise_recall",
]

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 10
# Where the Django-free embedders live.
EMBEDDINGS_FILES = ("retrieval/embeddings.py",)


def load_embeddings(root: Path = ROOT) -> ModuleType:
    """Engramia's embeddings module, loaded from its file so no package __init__ (and no
    Django) is imported: the same HashEmbedder code in both virtualenvs. Its one project import,
    the Django-free engramia_site.errors, is found on the repository root."""
    if str(root) not in sys.path:
        sys.path.append(str(root))
    for relative in EMBEDDINGS_FILES:
        path = root / relative
        if path.is_file():
            spec = importlib.util.spec_from_file_location("engramia_bench_embeddings", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            return module
    raise FileNotFoundError(f"no embeddings module at {EMBEDDINGS_FILES} under {root}")


def hash_embedder(dimensions: int, root: Path = ROOT) -> Any:
    """Engramia's deterministic hash embedder (ENGRAMIA_EMBEDDINGS=hash)."""
    return load_embeddings(root).HashEmbedder(dimensions)


def summarise_learn(latencies_ms: Sequence[float], seconds: float) -> dict[str, float]:
    """Learn rate over the whole loop and the per-call median."""
    return {
        "learn_per_s": len(latencies_ms) / seconds if seconds else float("nan"),
        "learn_p50_ms": percentile(latencies_ms, 0.5),
        "learn_p95_ms": percentile(latencies_ms, 0.95),
    }


def summarise_recall(latencies_ms: Sequence[float]) -> dict[str, float]:
    """Recall p50 and p95."""
    return {
        "recall_p50_ms": percentile(latencies_ms, 0.5),
        "recall_p95_ms": percentile(latencies_ms, 0.95),
    }


class NetworkGuard:
    """Refuses (and records) every Python-level connection to a non-loopback address.

    The machine has no internet, so a provider call would fail anyway; this makes any attempt
    visible in the output instead of a timeout. libpq's own sockets (psycopg) are not Python
    sockets and go to the local server only.
    """

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._connect = socket.socket.connect
        self._connect_ex = socket.socket.connect_ex

    @staticmethod
    def _local(address: Any) -> bool:
        if isinstance(address, str | bytes):  # AF_UNIX path
            return True
        host = str(address[0]) if isinstance(address, tuple) and address else ""
        return host in ("localhost", "::1") or host.startswith("127.")

    def install(self) -> None:
        guard = self

        def connect(sock: socket.socket, address: Any) -> Any:
            if not guard._local(address):
                guard.attempts.append(repr(address))
                raise ConnectionRefusedError(f"benchmark network guard: {address!r}")
            return guard._connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> Any:
            if not guard._local(address):
                guard.attempts.append(repr(address))
                return 111  # ECONNREFUSED
            return guard._connect_ex(sock, address)

        socket.socket.connect = connect  # type: ignore[method-assign]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
