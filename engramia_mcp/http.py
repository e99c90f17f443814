"""Streamable HTTP at /mcp: an Engramia API key, then the `mcp` SDK's session manager.

Mounted next to Django by `settings.ASGI_MOUNTS` (engramia_site.asgi_mounts runs its lifespan:
the session manager's task group). Every request is authenticated like the API's: `Authorization:
Bearer <key>`, the project a tenant-wide key names in X-Engramia-Project, the same failure and
per-key throttles, the same host check. The server is stateless and answers JSON: any web worker
can serve any request, as for the API, and no session outlives its request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from mcp.server import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from engramia_mcp.principal import Principal, key_principal
from engramia_mcp.server import build_server
from engramia_mcp.threads import in_thread
from engramia_site.api_errors import api_error_body, from_domain_error
from engramia_site.errors import DomainError, NotFound
from engramia_site.input_text import text_problem
from tenants.api.throttling import auth_failure_wait, count_auth_failure, key_request_wait
from tenants.keyscope import PROJECT_HEADER
from tenants.services import authenticate_api_key

# Where the authenticated principal travels with the request, to the tool handlers.
PRINCIPAL = "engramia.mcp.principal"
REALM = 'Bearer realm="engramia"'


@dataclass(frozen=True)
class Refusal:
    """An HTTP answer given before the MCP server sees the request."""

    status: int
    detail: str
    code: str
    attr: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    async def __call__(self, send: Any) -> None:
        error = {"code": self.code, "detail": self.detail, "attr": self.attr}
        kind = "validation_error" if self.status == 400 else "client_error"
        body = json.dumps({"type": kind, "errors": [error]}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *((name.encode(), value.encode()) for name, value in self.headers.items()),
        ]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _unauthorized(detail: str, code: str = "authentication_failed") -> Refusal:
    return Refusal(401, detail, code, headers={"WWW-Authenticate": REALM})


def _throttled(wait: float, detail: str) -> Refusal:
    return Refusal(429, detail, "throttled", headers={"Retry-After": str(max(1, round(wait)))})


def _domain_refusal(exc: DomainError) -> Refusal:
    api = from_domain_error(exc)
    error = api_error_body(api)["errors"][0]
    return Refusal(int(api.status_code), str(error["detail"]), str(error["code"]), error["attr"])


def authenticate(authorization: str, project: str, address: str) -> Principal | Refusal:
    """The principal of a request's key, or the API's refusal (401, 404, 400, 429)."""
    for value, name in ((authorization, "Authorization"), (project, PROJECT_HEADER)):
        problem = text_problem(value, name)
        if problem:
            return Refusal(400, problem.detail, problem.code, problem.attr)
    if not authorization:
        return _unauthorized("Authentication credentials were not provided.", "not_authenticated")
    failing = auth_failure_wait(address)
    if failing is not None:
        return _throttled(failing, "Too many failed authentications from this address.")
    parts = authorization.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        count_auth_failure(address)
        return _unauthorized("Malformed Authorization header: expected 'Bearer <api key>'.")
    scope = authenticate_api_key(parts[1], project.strip())
    if scope is None:
        count_auth_failure(address)
        return _unauthorized("Invalid, revoked or expired API key.")
    wait = key_request_wait(scope.key)
    if wait is not None:
        return _throttled(wait, "Request was throttled.")
    try:
        return key_principal(scope)
    except DomainError as exc:
        return _domain_refusal(exc)


def principal_of_request(ctx: ServerRequestContext[Any, Any]) -> Principal:
    """The principal the HTTP layer authenticated for the request carrying this message."""
    request = ctx.request
    principal = request.scope.get(PRINCIPAL) if request is not None else None
    if not isinstance(principal, Principal):  # cannot happen behind McpHttpApplication
        raise NotFound("No authenticated project for this request.")
    return principal


class McpHttpApplication:
    """The ASGI app mounted at /mcp."""

    def __init__(self) -> None:
        self.server = build_server(principal_of_request)
        self.manager: StreamableHTTPSessionManager | None = None

    def _new_manager(self) -> StreamableHTTPSessionManager:
        # A manager runs once: each lifespan (a test server, a restarted worker) gets its own.
        return StreamableHTTPSessionManager(
            app=self.server,
            json_response=True,
            stateless=True,
            max_request_body_size=int(settings.MAX_REQUEST_BYTES),
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        refusal = self._refuse_early(scope)
        if refusal is not None:
            await refusal(send)
            return
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope.get("headers", [])
        }
        address = (scope.get("client") or ("unknown", 0))[0]
        found = await in_thread(
            authenticate,
            headers.get("authorization", ""),
            headers.get(PROJECT_HEADER.lower(), ""),
            address,
        )
        if isinstance(found, Refusal):
            await found(send)
            return
        manager = self.manager
        if manager is None:  # shut down between the check and now
            await Refusal(503, "The MCP server is not running.", "service_unavailable")(send)
            return
        await manager.handle_request({**scope, PRINCIPAL: found}, receive, send)

    def _refuse_early(self, scope: dict[str, Any]) -> Refusal | None:
        """404 off the mount point, 400 for a host not in ALLOWED_HOSTS, 503 before startup."""
        mount = scope.get("root_path", "").rstrip("/")
        if scope.get("path", "").rstrip("/") != mount:
            return Refusal(404, "Not found.", "not_found")
        host = dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1")
        domain, _ = split_domain_port(host)
        if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
            return Refusal(400, f"Invalid HTTP_HOST header: {host!r}.", "invalid_host")
        if self.manager is None:
            return Refusal(503, "The MCP server is not running.", "service_unavailable")
        return None

    async def _lifespan(self, receive: Any, send: Any) -> None:
        await receive()  # lifespan.startup
        manager = self._new_manager()
        started = False
        try:
            async with manager.run():
                self.manager = manager
                started = True
                await send({"type": "lifespan.startup.complete"})
                await receive()  # lifespan.shutdown
                self.manager = None
        except Exception as exc:
            self.manager = None
            event = "shutdown" if started else "startup"
            await send({"type": f"lifespan.{event}.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.shutdown.complete"})


application = McpHttpApplication()
