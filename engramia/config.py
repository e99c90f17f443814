"""How a `Memory` is configured: mode, scope and remote endpoint, from arguments or environment.

Django-free: this only reads arguments and environment variables and validates them, so a bad
configuration fails at `Memory()` with one clear sentence instead of deep inside a first call.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from engramia.errors import EngramiaConfigError

# The same rule as tenants.models.slug_validator (kept here so the check needs no Django).
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
SLUG_RULE = "1-64 lowercase letters, digits and inner hyphens"


@dataclass(frozen=True)
class Scope:
    """A tenant and a project, by slug."""

    tenant: str
    project: str

    @property
    def path(self) -> str:
        return f"{self.tenant}/{self.project}"


@dataclass(frozen=True)
class RemoteSettings:
    """Where the Engramia API is and which key to use."""

    api_url: str
    api_key: str
    project: str | None  # the project slug for X-Engramia-Project (tenant-wide keys)


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def _check_slug(value: str, what: str, source: str) -> str:
    if not SLUG_RE.match(value):
        raise EngramiaConfigError(
            f"{source}: {value!r} is not a valid {what} slug (use {SLUG_RULE})"
        )
    return value


def parse_scope(path: str, source: str = "project") -> Scope:
    """Split and validate 'tenant-slug/project-slug'."""
    parts = path.strip().split("/")
    if len(parts) != 2 or not all(parts):
        raise EngramiaConfigError(f"{source}={path!r} is not of the form tenant-slug/project-slug")
    return Scope(_check_slug(parts[0], "tenant", source), _check_slug(parts[1], "project", source))


def resolve_scope(project: str | None) -> Scope:
    """The scope of local mode: the argument, ENGRAMIA_PROJECT, or the two slug variables."""
    if project is not None:
        if not isinstance(project, str) or not project.strip():
            raise EngramiaConfigError("project must be a 'tenant-slug/project-slug' string")
        return parse_scope(project, "project")
    if path := _env("ENGRAMIA_PROJECT"):
        return parse_scope(path, "ENGRAMIA_PROJECT")
    tenant, project_slug = _env("ENGRAMIA_TENANT_ID"), _env("ENGRAMIA_PROJECT_ID")
    if tenant and project_slug:
        return Scope(
            _check_slug(tenant, "tenant", "ENGRAMIA_TENANT_ID"),
            _check_slug(project_slug, "project", "ENGRAMIA_PROJECT_ID"),
        )
    if tenant or project_slug:
        missing = "ENGRAMIA_PROJECT_ID" if tenant else "ENGRAMIA_TENANT_ID"
        raise EngramiaConfigError(
            f"{missing} is not set: ENGRAMIA_TENANT_ID and ENGRAMIA_PROJECT_ID go together "
            "(or set ENGRAMIA_PROJECT=tenant-slug/project-slug)"
        )
    raise EngramiaConfigError(
        "no memory scope: pass Memory(project='tenant-slug/project-slug') or set "
        "ENGRAMIA_PROJECT (or ENGRAMIA_TENANT_ID and ENGRAMIA_PROJECT_ID); for a server, set "
        "ENGRAMIA_API_URL and ENGRAMIA_API_KEY"
    )


def resolve_remote(
    project: str | None, api_url: str | None, api_key: str | None
) -> RemoteSettings | None:
    """Remote settings when an API URL is given (argument or ENGRAMIA_API_URL), else None."""
    url = (api_url or "").strip() or _env("ENGRAMIA_API_URL")
    if not url:
        if api_key:
            raise EngramiaConfigError(
                "api_key was given without api_url: pass api_url (or set ENGRAMIA_API_URL) "
                "to use an Engramia server"
            )
        return None
    if not url.startswith(("http://", "https://")):
        raise EngramiaConfigError(f"api_url {url!r} must start with http:// or https://")
    key = (api_key or "").strip() or _env("ENGRAMIA_API_KEY")
    if not key:
        raise EngramiaConfigError(
            f"api_url is {url!r} but no API key was given: pass api_key or set ENGRAMIA_API_KEY "
            "(create one with `engramia create_api_key`)"
        )
    url = url.rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    slug = None
    if project is not None:
        slug = (
            parse_scope(project, "project").project
            if "/" in project
            else _check_slug(project, "project", "project")
        )
    elif path := _env("ENGRAMIA_PROJECT"):
        slug = parse_scope(path, "ENGRAMIA_PROJECT").project
    elif project_slug := _env("ENGRAMIA_PROJECT_ID"):
        slug = _check_slug(project_slug, "project", "ENGRAMIA_PROJECT_ID")
    return RemoteSettings(api_url=url, api_key=key, project=slug)
