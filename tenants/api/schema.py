"""What /v1/schema says of every operation beyond its own annotations.

The bearer key, the project header and the error answers are the same everywhere because one
base view (`tenants.api.base`), one set of parsers and one middleware stack give them; this
schema class documents them from the same facts (the view's required role, its method), so an
endpoint cannot document fewer answers than it gives.
"""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.settings import api_settings

from tenants.api.authentication import PROJECT_HEADER
from tenants.api.base import ScopedViewMixin
from tenants.api.strict import StrictMixin
from tenants.choices import Role

ERROR_DESCRIPTIONS = {
    400: "Invalid input: each error names its field in `attr`. Also a tenant-wide key "
    f"without `{PROJECT_HEADER}`, or text the database cannot store (U+0000, lone surrogates).",
    401: "Missing, malformed, revoked or expired API key.",
    403: "The key's role is too low for this operation.",
    404: "Absent, or not visible to this key (another tenant's or project's).",
    409: "Conflicts with the current state.",
    413: "The body is over the size limit (ENGRAMIA_MAX_REQUEST_BYTES, or the documents and "
    "imports limits).",
    429: "Throttled: too many requests for this key, or too many failed authentications from "
    "this address. `Retry-After` says when to try again.",
    503: "A dependency (the database, an embedding provider, the LLM judge) is down or not "
    "configured.",
}
# Every authenticated operation can answer these: key (401), project header (400, 404),
# throttle (429), database (503).
SCOPED_ERRORS = (400, 401, 404, 429, 503)
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})


class ApiKeyScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """`Authorization: Bearer <api key>` in the schema."""

    target_class = "tenants.api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An Engramia API key (`eng_…`), bound to a tenant and usually one "
            f"project; a tenant-wide key names the project in `{PROJECT_HEADER}`.",
        }


class ApiErrorDetailSerializer(serializers.Serializer):
    """One error: a machine-readable code, a message, and the field it is about (or null)."""

    code = serializers.CharField()
    detail = serializers.CharField()
    attr = serializers.CharField(allow_null=True)


class ApiErrorSerializer(serializers.Serializer):
    """The body of every /v1 error answer."""

    type = serializers.ChoiceField(choices=["validation_error", "client_error", "server_error"])
    errors = ApiErrorDetailSerializer(many=True)  # type: ignore[assignment]


PROJECT_PARAMETER = OpenApiParameter(
    PROJECT_HEADER,
    str,
    OpenApiParameter.HEADER,
    description="The project's slug: required with a tenant-wide key; with a project key it "
    "must name the key's own project (or be left out).",
)


class ApiAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the project header and the shared error answers."""

    def _scoped(self) -> bool:
        return isinstance(self.view, ScopedViewMixin)

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        if self._scoped():
            parameters.append(PROJECT_PARAMETER)
        return parameters

    def _get_parameters(self) -> list[dict[str, Any]]:
        parameters = list(super()._get_parameters())
        if getattr(self.view, "refuses_empty_query_values", False):
            return parameters
        for parameter in parameters:
            # An empty query value is the parameter left out (as in an HTML form's query).
            if parameter["in"] == "query" and not parameter.get("required"):
                parameter["allowEmptyValue"] = True
        return parameters

    def map_parsers(self) -> list[Any]:
        # The site-wide parsers also read multipart forms, but /v1 speaks JSON: only views that
        # choose their own parsers (documents, imports, sessions) document what they choose.
        if list(self.view.parser_classes) == list(api_settings.DEFAULT_PARSER_CLASSES):
            return ["application/json"]
        return list(super().map_parsers())

    def _map_basic_serializer(self, serializer: Any, direction: Any) -> dict[str, Any]:
        schema = dict(super()._map_basic_serializer(serializer, direction))
        if direction == "request" and isinstance(serializer, StrictMixin):
            schema["additionalProperties"] = False  # unknown fields are refused, not ignored
        return schema

    def _map_serializer_field(
        self, field: Any, direction: Any, bypass_extensions: bool = False
    ) -> dict[str, Any]:
        schema = dict(super()._map_serializer_field(field, direction, bypass_extensions))
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and field.trim_whitespace
            and not field.allow_blank
            and schema.get("type") == "string"
            and "pattern" not in schema
        ):
            # The field is trimmed before the blank check: whitespace alone is refused.
            schema["pattern"] = r"\S"
        return schema

    def _get_request_body(self, direction: Any = "request") -> dict[str, Any] | None:
        body = super()._get_request_body(direction)
        # A raw body (not a serializer) is required when the view says so.
        if body is not None and getattr(self.view, "request_body_required", False):
            body["required"] = True
        return body

    def error_statuses(self) -> set[int]:
        """The error answers this operation can give whatever it does itself."""
        if not self._scoped():
            return set()
        statuses = set(SCOPED_ERRORS)
        view = cast(ScopedViewMixin, self.view)
        if view.required_role(self.view.request) != Role.READER:
            statuses.add(403)
        if self.method in WRITE_METHODS:
            statuses.add(413)
        return statuses

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        bodies = dict(super()._get_response_bodies(direction))
        for status in sorted(self.error_statuses()):
            if str(status) not in bodies:
                bodies[str(status)] = error_response_body(self, status, direction)
        return bodies


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """Error answers an operation gives beyond the shared ones (e.g. 409), for extend_schema."""
    return {
        status: OpenApiResponse(ApiErrorSerializer, description=ERROR_DESCRIPTIONS[status])
        for status in statuses
    }


def error_response_body(schema: AutoSchema, status: int, direction: Any) -> dict[str, Any]:
    """The documented answer for an error status: the error body and what it means."""
    body = schema._get_response_for_code(ApiErrorSerializer, str(status), direction=direction)
    body["description"] = ERROR_DESCRIPTIONS[status]
    return dict(body)
