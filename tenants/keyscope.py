"""The API's hot path in one statement: a bearer key, the project it acts on, its user's roles.

Every API request needs the key (with its user and tenant), the project it acts on (the key's
own, or the one a tenant-wide key names in `X-Engramia-Project`) and the permissions its user
holds on that project and on its tenant. Through the ORM that is three queries and about 3 ms
of query compilation and model building per request, more than a small recall costs in the
database. Here it is one SQL statement, composed once per process from the models' own
metadata, whose row becomes the usual model instances (`Model.from_db`): views still receive an
`ApiKey` whose `user`, `tenant` and `project` are loaded, and a `Project` whose `tenant` is.

The rules stay where they were: `tenants.roles.role_from_codenames` turns the permissions into
a role and `tenants.choices.lower_role` caps it by the key; this module only fetches.

Each process keeps the row it read for `settings.API_KEY_CACHE_SECONDS` (1 s by default), so an
agent's calls in quick succession make one round trip instead of two. The secret is still
checked against the key's hash on every request. Any change to a key, user, tenant, project or
permission made in this process forgets every kept row at once (and again when its transaction
commits); one made by another process is seen within those seconds.
"""

from __future__ import annotations

import functools
import hmac
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection, models, transaction
from django.db.models.signals import post_delete, post_save

from tenants.models import (
    ApiKey,
    Project,
    ProjectUserObjectPermission,
    Tenant,
    TenantUserObjectPermission,
)
from tenants.statements import from_row, read_columns, split_row

__all__ = [
    "PROJECT_HEADER",
    "KeyScope",
    "connect_signals",
    "forget_key_scope",
    "forget_key_scopes",
    "load_key_scope",
]

# The header in which a tenant-wide key names the project a request acts on.
PROJECT_HEADER = "X-Engramia-Project"


@dataclass(frozen=True)
class KeyScope:
    """A key as stored (hash not yet checked) and the project a request with it acts on."""

    key: ApiKey
    # The project slug the request named (X-Engramia-Project), "" when none.
    named: str
    # The key's own project, else the tenant's project named by the request; None when a
    # tenant-wide key names no project or one its tenant does not have.
    project: Project | None
    # The user's guardian codenames on that project and on the key's tenant.
    codenames: frozenset[str]


def _fields(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    return list(model._meta.concrete_fields)


@functools.cache
def _statement() -> str:
    user_model = get_user_model()
    project_permissions = ProjectUserObjectPermission._meta.db_table
    tenant_permissions = TenantUserObjectPermission._meta.db_table
    permission = Permission._meta.db_table
    # Only table and column names from the models' metadata are interpolated; values are bound.
    return f"""
        SELECT {read_columns(ApiKey, "k")}, {read_columns(user_model, "u")},
               {read_columns(Tenant, "t")}, {read_columns(Project, "p")},
               ARRAY(
                   SELECT perm.codename
                     FROM "{project_permissions}" granted
                     JOIN "{permission}" perm ON perm.id = granted.permission_id
                    WHERE granted.user_id = k.user_id AND granted.content_object_id = p.id
                   UNION ALL
                   SELECT perm.codename
                     FROM "{tenant_permissions}" granted
                     JOIN "{permission}" perm ON perm.id = granted.permission_id
                    WHERE granted.user_id = k.user_id AND granted.content_object_id = k.tenant_id
               ) AS codenames
          FROM "{ApiKey._meta.db_table}" k
          JOIN "{user_model._meta.db_table}" u ON u.id = k.user_id
          JOIN "{Tenant._meta.db_table}" t ON t.id = k.tenant_id
          LEFT JOIN "{Project._meta.db_table}" p ON p.id = COALESCE(
              k.project_id,
              (SELECT named.id FROM "{Project._meta.db_table}" named
                WHERE named.tenant_id = k.tenant_id AND named.slug = %(slug)s)
          )
         WHERE k.prefix = %(prefix)s
    """  # noqa: S608


# Rows kept per (key prefix, named project): (monotonic expiry, row). Only rows whose secret
# was presented and whose named project exists are kept, so neither guessing keys nor naming
# made-up projects fills it; past MAX_KEPT_ROWS expired rows go, then all if still full.
_kept: dict[tuple[str, str], tuple[float, tuple[Any, ...]]] = {}
MAX_KEPT_ROWS = 10_000


def forget_key_scopes(*_args: Any, **_kwargs: Any) -> None:
    """Drop every kept row now and when the current transaction commits (a signal receiver)."""
    _kept.clear()
    if connection.in_atomic_block:
        # A request that reads between this change and its commit keeps the old row; drop it
        # again once the change is visible.
        transaction.on_commit(_kept.clear)


def forget_key_scope(prefix: str, project_slug: str) -> None:
    """Drop the kept row of one key and project (its last use was just recorded)."""
    _kept.pop((prefix, project_slug), None)


@functools.cache
def _positions() -> tuple[int, int]:
    """Where the key's hash and the project's slug are in a row."""
    key_hash = [field.attname for field in _fields(ApiKey)].index("key_hash")
    project = sum(len(_fields(model)) for model in (ApiKey, get_user_model(), Tenant))
    return key_hash, project + [field.attname for field in _fields(Project)].index("slug")


def _keep(prefix: str, project_slug: str, row: tuple[Any, ...], key_hash: str, now: float) -> None:
    hash_at, slug_at = _positions()
    if not hmac.compare_digest(str(row[hash_at]), key_hash):
        return  # a wrong secret for a real prefix: not worth keeping
    if project_slug and row[slug_at] != project_slug:
        return  # a project the tenant does not have, or not the project-bound key's own
    if len(_kept) >= MAX_KEPT_ROWS:
        for expired in [entry for entry, (until, _) in list(_kept.items()) if until <= now]:
            _kept.pop(expired, None)
        if len(_kept) >= MAX_KEPT_ROWS:
            _kept.clear()
    _kept[(prefix, project_slug)] = (now + settings.API_KEY_CACHE_SECONDS, row)


def _row(prefix: str, project_slug: str, key_hash: str) -> tuple[Any, ...] | None:
    now = time.monotonic()
    kept = _kept.get((prefix, project_slug))
    if kept is not None and kept[0] > now:
        return kept[1]
    with connection.cursor() as cursor:
        cursor.execute(_statement(), {"prefix": prefix, "slug": project_slug})
        row = cursor.fetchone()
    if row is None:
        return None
    row = tuple(row)
    if settings.API_KEY_CACHE_SECONDS > 0 and key_hash:
        _keep(prefix, project_slug, row, key_hash, now)
    return row


def load_key_scope(prefix: str, project_slug: str = "", key_hash: str = "") -> KeyScope | None:
    """The key with this prefix and the project it acts on; None if no such key.

    One query, or none when this process read the same row less than
    `settings.API_KEY_CACHE_SECONDS` ago. A row is kept only when `key_hash` (the hash of the
    presented secret) matches it. The model instances are new for every call.
    """
    row = _row(prefix, project_slug, key_hash)
    if row is None:
        return None
    key_values, user_values, tenant_values, project_values = split_row(
        row, ApiKey, get_user_model(), Tenant, Project
    )
    key = from_row(ApiKey, key_values)
    key.user = from_row(get_user_model(), user_values)
    key.tenant = tenant = from_row(Tenant, tenant_values)
    project = None
    if project_values[0] is not None:
        project = from_row(Project, project_values)
        project.tenant = tenant
    key.project = project if key.project_id is not None else None
    return KeyScope(
        key=key, named=project_slug, project=project, codenames=frozenset(row[-1] or ())
    )


def connect_signals() -> None:
    """Forget kept rows whenever anything they were read from changes (AppConfig.ready)."""
    for model in (
        ApiKey,
        get_user_model(),
        Tenant,
        Project,
        ProjectUserObjectPermission,
        TenantUserObjectPermission,
        Permission,
    ):
        post_save.connect(forget_key_scopes, sender=model, dispatch_uid=f"keyscope-{model}")
        post_delete.connect(forget_key_scopes, sender=model, dispatch_uid=f"keyscope-{model}-del")
