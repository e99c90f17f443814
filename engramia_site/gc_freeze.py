"""Keep a long-running process's startup objects out of Python's full garbage collections.

A web worker holds ~300,000 objects once Django, the providers' SDKs and the embedder are
loaded, and they live as long as the worker. CPython's full (generation 2) collection walks
all of them whenever enough new objects have survived: measured at 270-430 ms in the middle of
a request on 2 cores (a streamed run's first token came 250-350 ms late, about one run in 15
of `bench/assistants_api.py`). Frozen objects are skipped by every collection, so a full one
only walks what the process made since.

Collected once first, so that garbage made while starting is not kept for good. Objects made
afterwards are collected as usual. A frozen object is still freed when nothing refers to it any
more; only reference cycles among frozen objects are never reclaimed, and a worker's modules and
settings live as long as it anyway. Before a fork (the job cluster) it also keeps the children
from touching, and so copying, the parent's memory pages during collections.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_startup_objects"]


def freeze_startup_objects() -> int:
    """Collect, then freeze every object the collector tracks; returns how many are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
