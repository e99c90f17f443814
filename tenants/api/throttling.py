"""Per-API-key request throttling."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

if TYPE_CHECKING:
    from rest_framework.views import APIView


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Limit each key (or, unauthenticated, each client address) to ENGRAMIA_API_THROTTLE."""

    scope = "api_key"

    def get_cache_key(self, request: Request, view: APIView) -> str:
        key = request.auth
        ident = f"key-{key.pk}" if key is not None else f"ip-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
