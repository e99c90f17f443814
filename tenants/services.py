"""Every write of the tenants app: tenants, projects, memberships, API keys, the cut-over."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from engramia_site.errors import InvalidInput, NotFound, PermissionDenied
from engramia_site.request_context import audited
from tenants.choices import ReadPath, Role, lower_role
from tenants.keyscope import PROJECT_HEADER, KeyScope, forget_key_scope, load_key_scope
from tenants.models import ApiKey, Membership, Project, Tenant, slug_validator
from tenants.roles import effective_role, grant_role, revoke_roles, role_from_codenames, tenant_role

KEY_PREFIX = "eng_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ScopeError(ValueError):
    """A T/P scope string or slug that does not name a usable tenant or project."""


def parse_project_path(path: str) -> tuple[str, str]:
    """Split 'tenant-slug/project-slug', validating both slugs."""
    parts = (path or "").strip().split("/")
    if len(parts) != 2 or not all(parts):
        raise ScopeError(f"{path!r} is not of the form tenant-slug/project-slug")
    for part in parts:
        try:
            slug_validator(part)
        except ValidationError:
            raise ScopeError(
                f"{part!r} is not a valid slug (lowercase letters, digits, inner hyphens)"
            ) from None
    return parts[0], parts[1]


def get_project_by_path(path: str) -> Project:
    """The project named by 'tenant/project'; ScopeError when absent."""
    tenant_slug, project_slug = parse_project_path(path)
    try:
        return Project.objects.select_related("tenant").get(
            tenant__slug=tenant_slug, slug=project_slug
        )
    except Project.DoesNotExist:
        raise ScopeError(f"project {path!r} does not exist") from None


@audited
@transaction.atomic
def ensure_project(tenant_slug: str, project_slug: str, *, actor: Any, name: str = "") -> Project:
    """Get or create a tenant and a project in it (idempotent, audited on creation)."""
    parse_project_path(f"{tenant_slug}/{project_slug}")
    tenant, _ = Tenant.objects.get_or_create(slug=tenant_slug, defaults={"name": tenant_slug})
    project, _ = Project.objects.select_related("tenant").get_or_create(
        tenant=tenant, slug=project_slug, defaults={"name": name or project_slug}
    )
    return project


@audited
@transaction.atomic
def set_membership(
    *, user: Any, scope: Tenant | Project, role: Role | str, actor: Any
) -> Membership:
    """Give user a role on a tenant or a project (replacing any previous role there)."""
    role = Role(role)
    if isinstance(scope, Project):
        membership, created = Membership.objects.get_or_create(
            user=user, tenant_id=scope.tenant_id, project=scope, defaults={"role": role}
        )
    else:
        membership, created = Membership.objects.get_or_create(
            user=user, tenant=scope, project=None, defaults={"role": role}
        )
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    grant_role(user, scope, role)
    return membership


@audited
@transaction.atomic
def remove_membership(membership: Membership, *, actor: Any) -> None:
    """Remove a membership and the permissions it granted."""
    revoke_roles(membership.user, membership.project or membership.tenant)
    membership.delete()


def hash_api_key(secret: str) -> str:
    """The stored form of a key: SHA-256 of the full high-entropy secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_secret() -> tuple[str, str]:
    prefix = secrets.token_hex(6)
    return prefix, f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"


@dataclass(frozen=True)
class IssuedKey:
    """A key row and its secret, which exists only in this object and is shown once."""

    key: ApiKey
    secret: str


@audited
@transaction.atomic
def create_api_key(
    *,
    actor: Any,
    user: Any,
    tenant: Tenant,
    project: Project | None,
    name: str,
    role: Role | str,
    expires_at: datetime | None = None,
) -> IssuedKey:
    """Issue a key for user, bound to tenant (and optionally one project), capped at role."""
    if project is not None and project.tenant_id != tenant.pk:
        raise ScopeError("the project does not belong to the key's tenant")
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "must be in the future"})
    for _attempt in range(3):
        prefix, secret = _new_secret()
        try:
            with transaction.atomic():
                key = ApiKey.objects.create(
                    user=user,
                    tenant=tenant,
                    project=project,
                    name=name,
                    role=Role(role),
                    prefix=prefix,
                    key_hash=hash_api_key(secret),
                    expires_at=expires_at,
                )
            return IssuedKey(key=key, secret=secret)
        except IntegrityError:  # prefix collision: astronomically rare, try another
            continue
    raise RuntimeError("could not allocate a unique API key prefix")


class KeyNotVisible(NotFound):
    """A key or project the actor cannot see: answered like a missing one."""


class KeyPermissionError(PermissionDenied):
    """The actor sees the key (or scope) but may not create, rotate or revoke it."""


class _Operator:
    """The server operator (CLI commands, bootstrap): key management without a role check."""

    def __repr__(self) -> str:
        return "OPERATOR"


OPERATOR: Any = _Operator()


def _acting_user(actor: Any) -> Any:
    return actor.user if isinstance(actor, ApiKey) else actor


def _scope_role(user: Any, tenant: Tenant, project: Project | None) -> Role | None:
    """user's role on project, or on the whole tenant for tenant-wide keys (project None)."""
    if project is None:
        return tenant_role(user, tenant) if user.is_active else None
    return effective_role(user, project)


def _managing_role(actor: Any, tenant: Tenant, project: Project | None) -> Role | None:
    """What actor (a key, capped by its role and binding, or a user) may do in that scope."""
    if not isinstance(actor, ApiKey):
        return _scope_role(actor, tenant, project)
    if actor.tenant_id != tenant.pk:
        return None
    if project is None:  # tenant-wide keys are managed only through a tenant-wide key
        if actor.project_id is not None:
            return None
        return cap_by_key(actor, _scope_role(actor.user, tenant, None))
    return key_role_on_project(actor, project)


def _outranks(role: Role, user: Any, other_role: Role, other: Any) -> bool:
    if role.rank > other_role.rank:
        return True
    # A superuser acting as owner stands above every other owner.
    return role == Role.OWNER and user.is_superuser and not other.is_superuser


def authorize_key_management(
    *, actor: Any, owner: Any, tenant: Tenant, project: Project | None, role: Role | str
) -> None:
    """Refuse unless actor may hold the power over a key of owner there at role.

    The one rule of creating, rotating and revoking keys, for the API (actor: the calling key)
    and the admin (actor: the signed-in user): admin role in the key's scope (the project, or
    the whole tenant for a tenant-wide key), never a key above the actor's own role, and
    another user's key only for an actor who outranks that user there.
    """
    if actor is OPERATOR:
        return
    user = _acting_user(actor)
    if not isinstance(actor, ApiKey) and user.is_superuser:
        return
    held = _managing_role(actor, tenant, project)
    if project is None and (held is None or not held.covers(Role.ADMIN)):
        raise KeyPermissionError(
            "Only a tenant admin, through a tenant-wide key, can manage tenant-wide keys."
        )
    if held is None:
        where = project.slug if project is not None else tenant.slug
        raise KeyNotVisible(f"Project {where!r} is not visible to this key.")
    if not held.covers(Role.ADMIN):
        raise KeyPermissionError(
            f"Managing API keys needs the admin role there; this caller acts as {held.value}."
        )
    role = Role(role)
    if not held.covers(role):
        raise KeyPermissionError(
            f"A key cannot grant or manage more than the caller's own role ({held.value}); "
            f"this key is {role.value}."
        )
    if owner.pk != user.pk:
        owner_role = _scope_role(owner, tenant, project)
        if owner_role is not None and not _outranks(held, user, owner_role, owner):
            raise KeyPermissionError(
                f"Another user's key can be managed only by a caller who outranks its owner "
                f"({owner_role.value} there); this caller acts as {held.value}."
            )


def project_for_new_key(*, actor: Any, slug: str) -> Project:
    """The project of the actor's tenant named by slug, if the actor can see it."""
    key = actor if isinstance(actor, ApiKey) else None
    if key is None:
        raise KeyNotVisible(f"Project {slug!r} is not visible to this key.")
    if key.project_id is not None and key.project is not None and slug != key.project.slug:
        raise KeyNotVisible(f"Project {slug!r} is not visible to this key.")
    project = Project.objects.select_related("tenant").filter(tenant_id=key.tenant_id, slug=slug)
    found = project.first()
    if found is None or key_role_on_project(key, found) is None:
        raise KeyNotVisible(f"Project {slug!r} is not visible to this key.")
    return found


@audited
@transaction.atomic
def create_api_key_for(
    *,
    actor: Any,
    tenant: Tenant,
    project: Project | None,
    name: str,
    role: Role | str,
    user: Any = None,
    expires_at: datetime | None = None,
) -> IssuedKey:
    """Issue a key (for the actor's own user unless user is given) within the actor's power."""
    owner = user if user is not None else _acting_user(actor)
    authorize_key_management(actor=actor, owner=owner, tenant=tenant, project=project, role=role)
    return create_api_key(
        user=owner,
        tenant=tenant,
        project=project,
        name=name,
        role=role,
        expires_at=expires_at,
        actor=actor,
    )


def _authorize_on_key(actor: Any, key: ApiKey) -> None:
    authorize_key_management(
        actor=actor, owner=key.user, tenant=key.tenant, project=key.project, role=key.role
    )


@audited
@transaction.atomic
def rotate_api_key(*, key: ApiKey, actor: Any) -> IssuedKey:
    """Give key a new secret, if actor may manage it; the old secret stops working at once."""
    _authorize_on_key(actor, key)
    if not key.is_active:
        raise ValidationError({"id": "A revoked or expired key cannot be rotated."})
    prefix, secret = _new_secret()
    key.prefix = prefix
    key.key_hash = hash_api_key(secret)
    key.save(update_fields=["prefix", "key_hash"])
    return IssuedKey(key=key, secret=secret)


@audited
@transaction.atomic
def revoke_api_key(key: ApiKey, *, actor: Any) -> ApiKey:
    """Revoke a key (idempotent), if actor may manage it (OPERATOR: the server operator)."""
    _authorize_on_key(actor, key)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


def authenticate_api_key(secret: str, project_slug: str = "") -> KeyScope | None:
    """The active key whose secret this is, with the project it acts on; None if not valid.

    One query (`tenants.keyscope`, kept by the process for `settings.API_KEY_CACHE_SECONDS`)
    fetches the key, its user and tenant, the project (the key's own, else the one named by
    project_slug) and the user's roles there. Last use is recorded at most once a minute.
    """
    if not secret.startswith(KEY_PREFIX) or secret.count("_") < 2:
        return None
    prefix = secret[len(KEY_PREFIX) :].split("_", 1)[0]
    presented = hash_api_key(secret)
    scope = load_key_scope(prefix, project_slug, presented)
    if scope is None or not hmac.compare_digest(scope.key.key_hash, presented):
        return None
    key = scope.key
    if not key.is_active or not key.user.is_active:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        # A plain UPDATE: usage bookkeeping is not an audited change.
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
        forget_key_scope(prefix, project_slug)  # the kept row still has the old time
    return scope


@audited
@transaction.atomic
def set_read_path(
    *, project: Project, read_path: ReadPath | str, reason: str, actor: Any
) -> Project:
    """The audited migration cut-over: change where the project's apps read memory from."""
    read_path = ReadPath(read_path)
    if not reason.strip():
        raise ValidationError({"reason": "a reason is required for a cut-over"})
    project.audit_reason = reason.strip()  # type: ignore[attr-defined]
    project.read_path = read_path
    project.save(update_fields=["read_path"])
    return project


@dataclass(frozen=True)
class BootstrapResult:
    """What bootstrap made: the scope, the owner, and a fresh owner key."""

    project: Project
    user: Any
    password: str | None
    issued: IssuedKey


@audited
@transaction.atomic
def bootstrap(
    *, tenant_slug: str, project_slug: str, email: str, actor: Any, key_name: str = "bootstrap"
) -> BootstrapResult:
    """Idempotently create tenant, project and owner user; always issue a new owner key."""
    project = ensure_project(tenant_slug, project_slug, actor=actor)
    user_model = get_user_model()
    user = user_model.objects.filter(email__iexact=email).first()
    password = None
    if user is None:
        password = secrets.token_urlsafe(12)
        user = user_model.objects.create_user(
            username=email, email=email, password=password, is_staff=True
        )
    elif not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    set_membership(user=user, scope=project.tenant, role=Role.OWNER, actor=actor)
    issued = create_api_key(
        user=user,
        tenant=project.tenant,
        project=project,
        name=key_name,
        role=Role.OWNER,
        actor=actor,
    )
    return BootstrapResult(project=project, user=user, password=password, issued=issued)


def key_role_on_project(key: ApiKey, project: Project) -> Role | None:
    """What a key may do in project: its user's effective role, capped by the key's role."""
    if key.tenant_id != project.tenant_id:
        return None
    if key.project_id is not None and key.project_id != project.pk:
        return None
    return cap_by_key(key, effective_role(key.user, project))


def cap_by_key(key: ApiKey, user_role: Role | None) -> Role | None:
    """What the key may do: its user's role there, capped by the key's own role."""
    return None if user_role is None else lower_role(Role(key.role), user_role)


@dataclass(frozen=True)
class KeyAccess:
    """Where a call made with an API key acts, and what it may do there."""

    key: ApiKey
    project: Project
    role: Role


def key_access(scope: KeyScope, header: str = PROJECT_HEADER) -> KeyAccess:
    """The project an authenticated key acts on (its own, or the one a tenant-wide key names in
    X-Engramia-Project, or `header`) and its role there; NotFound when it sees no such project.

    The API's views (tenants.api.base) and the MCP server both decide scope with this.
    """
    key, named = scope.key, scope.named
    if key.project_id is not None:
        assert key.project is not None
        if named and named != key.project.slug:
            raise NotFound(f"Project {named!r} is not visible to this key.")
        project = key.project
    elif not named:
        raise InvalidInput("A tenant-wide key must name the project in this header.", field=header)
    elif scope.project is None:
        raise NotFound(f"Project {named!r} is not visible to this key.")
    else:
        project = scope.project
    role = cap_by_key(key, role_from_codenames(key.user, scope.codenames))
    if role is None:
        raise NotFound("Project not found.")
    return KeyAccess(key=key, project=project, role=role)


def require_role(role: Role, needed: Role) -> None:
    """PermissionDenied unless role covers needed (the caller sees the project: 403, not 404)."""
    if not Role(role).covers(needed):
        raise PermissionDenied(
            f"This needs the {Role(needed).value} role; this key acts as {Role(role).value}."
        )
