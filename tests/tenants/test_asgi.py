"""The site under ASGI: Django behind path-prefix mounts whose lifespans run with the server."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from engramia_site.asgi_mounts import MountRouter, build_application, load_app


class Recorder:
    """An ASGI app that answers with its name and records what reached it."""

    def __init__(self, name: str, *, lifespan: bool = False) -> None:
        self.name = name
        self.lifespan = lifespan
        self.paths: list[tuple[str, str]] = []
        self.events: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            if not self.lifespan:
                raise RuntimeError("no lifespan here")
            while True:
                message = await receive()
                event = message["type"].removeprefix("lifespan.")
                self.events.append(event)
                await send({"type": f"lifespan.{event}.complete"})
                if event == "shutdown":
                    return
        self.paths.append((scope["path"], scope.get("root_path", "")))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": self.name.encode()})


def _get(app: Any, path: str) -> str:
    async def call() -> str:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return (await client.get(path)).text

    return asyncio.run(call())


def test_a_mounted_prefix_goes_to_its_app_and_everything_else_to_django() -> None:
    django, mcp = Recorder("django"), Recorder("mcp")
    router = MountRouter(django, {"/mcp": mcp})
    assert _get(router, "/mcp") == "mcp"
    assert _get(router, "/mcp/session") == "mcp"
    assert _get(router, "/mcpx") == "django"
    assert _get(router, "/v1/health") == "django"
    assert mcp.paths == [("/mcp", "/mcp"), ("/mcp/session", "/mcp")]


def test_lifespans_of_mounted_apps_run_and_apps_without_one_are_skipped() -> None:
    with_lifespan, without = Recorder("a", lifespan=True), Recorder("b")
    router = MountRouter(Recorder("django"), {"/a": with_lifespan, "/b": without})
    sent: list[str] = []

    async def run() -> None:
        incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for event in ("startup", "shutdown"):
            incoming.put_nowait({"type": f"lifespan.{event}"})

        async def send(message: dict[str, Any]) -> None:
            sent.append(message["type"])

        await router({"type": "lifespan"}, incoming.get, send)

    asyncio.run(run())
    assert with_lifespan.events == ["startup", "shutdown"]
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_without_mounts_everything_is_the_wsgi_application_on_threads() -> None:
    def wsgi(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"wsgi:" + environ["PATH_INFO"].encode()]

    assert _get(build_application(wsgi, {}, threads=2), "/v1/health") == "wsgi:/v1/health"
    with pytest.raises(ValueError, match=r"module\.path:attribute"):
        load_app("no-colon")


def test_the_site_answers_over_a_real_asgi_server(asgi_server: str) -> None:
    health = httpx.get(f"{asgi_server}/v1/health", timeout=10)
    assert health.status_code == 200 and health.json()["database"] == "ok"
    login = httpx.get(f"{asgi_server}/admin/login/", timeout=10)
    assert login.status_code == 200 and "csrfmiddlewaretoken" in login.text
    css = httpx.get(f"{asgi_server}/static/admin/css/base.css", timeout=10)
    assert css.status_code == 200 and "body" in css.text
