"""Bearer API key authentication."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from engramia_site.request_context import set_request_actor
from tenants.api.throttling import record_auth_failure, refuse_if_failing
from tenants.keyscope import PROJECT_HEADER
from tenants.services import authenticate_api_key

PROJECT_META = "HTTP_" + PROJECT_HEADER.upper().replace("-", "_")


def header_meta(header: str) -> str:
    """The request.META key of an HTTP header."""
    return "HTTP_" + header.upper().replace("-", "_")


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer eng_...`; missing, malformed, revoked or expired keys answer 401.

    Failures are counted per client address; past ENGRAMIA_AUTH_FAILURE_THROTTLE the address
    gets 429 before its key is looked at, so guessing keys gains nothing.
    """

    keyword = "Bearer"
    # The headers that may name the project a tenant-wide key acts on, the first present wins.
    project_headers: tuple[str, ...] = (PROJECT_HEADER,)

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        refuse_if_failing(request)
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != self.keyword.lower():
            record_auth_failure(request)
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: expected 'Bearer <api key>'."
            )
        # The project header is resolved in the same query as the key (see tenants.keyscope);
        # the scoped views check it (tenants.api.base).
        named = self.named_project(request)
        scope = authenticate_api_key(parts[1], named)
        if scope is None:
            record_auth_failure(request)
            raise exceptions.AuthenticationFailed("Invalid, revoked or expired API key.")
        key = scope.key
        key.scope = scope  # type: ignore[attr-defined]
        set_request_actor(key.user, key.name)
        return key.user, key

    def named_project(self, request: Request) -> str:
        """The project slug the request names in one of project_headers ("" when none)."""
        for header in self.project_headers:
            named = request.META.get(header_meta(header), "").strip()
            if named:
                return str(named)
        return ""

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="engramia"'
