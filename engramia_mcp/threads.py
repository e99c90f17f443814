"""Where MCP calls run the ORM: a fixed pool of threads, each keeping its database connection.

Django's ORM is synchronous and its connections belong to threads. As with the API's WSGI pool
(engramia_site.asgi), a fixed set of threads keeps connections open between calls
(CONN_MAX_AGE) instead of opening one per call; each call starts and ends like a request does,
closing a connection that has expired or failed.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.conf import settings
from django.db import close_old_connections

Result = TypeVar("Result")

_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            # Created on first use: a web process that serves no MCP call opens no connection.
            _pool = ThreadPoolExecutor(
                max_workers=int(settings.WEB_THREADS), thread_name_prefix="engramia-mcp"
            )
        return _pool


def _as_request(work: Callable[..., Result], *args: Any) -> Result:
    close_old_connections()
    try:
        return work(*args)
    finally:
        close_old_connections()


async def in_thread(work: Callable[..., Result], *args: Any) -> Result:
    """work(*args) on the pool, awaited without blocking the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), functools.partial(_as_request, work, *args))
