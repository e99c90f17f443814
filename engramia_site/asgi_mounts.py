"""Path-prefix routing in front of Django's WSGI application, with mounted apps' lifespans.

`settings.ASGI_MOUNTS` maps a path prefix to an ASGI app (`"dotted.path:app"`). Everything else
is Django's WSGI application on a fixed pool of threads (`engramia_site.wsgi_bridge`), whose
responses that stream from async iterators are sent from the event loop. Mounted apps may have
a lifespan (a session manager's task group): each one that answers the lifespan protocol is
started before the server accepts requests and stopped after it drains.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]  # (scope, receive, send); Django's is typed narrower


def load_app(path: str) -> ASGIApp:
    """The ASGI app named `module.path:attribute`."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{path!r} is not of the form 'module.path:attribute'")
    app: ASGIApp = getattr(importlib.import_module(module_name), attribute)
    return app


class _Lifespan:
    """One mounted app's lifespan, driven through its own message queues."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.outbox: asyncio.Queue[Message] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.supported = True

    async def _run(self, scope: Scope) -> None:
        try:
            await self.app(scope, self.inbox.get, self.outbox.put)
        except Exception:
            if self.supported and self.outbox.empty():
                self.supported = False  # an app without lifespan support raises at once
                await self.outbox.put({"type": "lifespan.unsupported"})
            else:
                raise

    async def step(self, scope: Scope, event: str) -> Message:
        """Send lifespan.<event> and wait for the app's answer."""
        if self.task is None:
            self.task = asyncio.create_task(self._run(scope))
        await self.inbox.put({"type": f"lifespan.{event}"})
        return await self.outbox.get()


class MountRouter:
    """Send requests under a mounted prefix to its app, the rest to the default (Django)."""

    def __init__(self, default: ASGIApp, mounts: Mapping[str, ASGIApp]) -> None:
        self.default = default
        # Longest prefix first, so /mcp/admin would win over /mcp.
        self.mounts = sorted(
            ((prefix.rstrip("/"), app) for prefix, app in mounts.items()),
            key=lambda item: -len(item[0]),
        )

    def route(self, path: str) -> tuple[ASGIApp, str]:
        """The app serving path, and the prefix it is mounted at ("" for the default)."""
        for prefix, app in self.mounts:
            if path == prefix or path.startswith(prefix + "/"):
                return app, prefix
        return self.default, ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        app, prefix = self.route(scope.get("path", ""))
        if prefix:
            scope = dict(scope)
            scope["root_path"] = scope.get("root_path", "") + prefix
        await app(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        lifespans = [_Lifespan(app) for _, app in self.mounts]
        while True:
            message = await receive()
            event = message["type"].removeprefix("lifespan.")
            failure = ""
            for lifespan in lifespans:
                if not lifespan.supported:
                    continue
                answer = await lifespan.step(scope, event)
                if answer["type"].endswith(".failed"):
                    failure = answer.get("message", "a mounted app failed its " + event)
            if failure:
                await send({"type": f"lifespan.{event}.failed", "message": failure})
            else:
                await send({"type": f"lifespan.{event}.complete"})
            if event == "shutdown":
                return


def build_application(wsgi: Any, mounts: Mapping[str, str], threads: int) -> ASGIApp:
    """Django's WSGI app on `threads` threads, behind the apps named in settings.ASGI_MOUNTS."""
    from engramia_site.wsgi_bridge import WSGIBridge

    default = WSGIBridge(wsgi, workers=threads)
    if not mounts:
        return default
    return MountRouter(default, {prefix: load_app(path) for prefix, path in mounts.items()})
