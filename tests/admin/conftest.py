"""The admin suite's world: three staff personas in tenant A, a sibling project and tenant B.

acme/support is the staff personas' project; acme/billing is a sibling project only the tenant owner
holds; globex/research is another tenant. Every record of the sibling project names "billing" and
every record of tenant B names "globex", so a page that leaks either is found by a substring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from django.test import Client

SIBLING_MARK = "billing"
FOREIGN_MARK = "globex"


@dataclass
class Scope:
    """The records seeded in one project, by model label (e.g. 'memory.Pattern')."""

    project: Any
    member: Any
    objects: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, obj: Any) -> Any:
        known = self.objects.setdefault(obj._meta.label, [])
        if all(other.pk != obj.pk for other in known):
            known.append(obj)
        return obj


@dataclass
class StaffWorld:
    """Staff personas of acme and the records of each project they may or may not see."""

    owner: Any  # tenant owner of acme
    admin: Any  # project admin of acme/support only
    reader: Any  # project reader of acme/support only
    root: Any  # a superuser, the control that proves the markers are found
    owner_key: Any  # the tenant owner's owner-role key on acme/support
    support: Scope
    billing: Scope
    research: Scope

    def client(self, user: Any) -> Client:
        client = Client()
        client.force_login(user)
        return client


def _user(email: str, *, staff: bool = False) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(
        username=email, email=email, password="pw-12345!", is_staff=staff
    )


def _seed(scope: Scope, mark: str) -> None:
    """One record of every admin-visible kind in scope's project, written as its member."""
    from conversations.services import add_session_items
    from engramia_site.request_context import acting_as
    from jobs.services import submit_job
    from memory.models import Pattern
    from memory.services import add_document, add_evaluation, learn_pattern
    from skills.services import register_skill
    from tenants.models import ApiKey, Membership
    from tenants.services import create_api_key

    project, member = scope.project, scope.member
    with acting_as(member):
        learned = learn_pattern(
            project=project, task=f"{mark} task: plan the rollout", code="x", actor=None
        )
        pattern = scope.add(Pattern.objects.get(pk=learned.pattern_id))
        add_evaluation(pattern=pattern, score=7, feedback=f"{mark} feedback", actor=member)
        scope.add(
            add_document(
                project=project, name=f"{mark}-notes.txt", text=f"{mark} notes", actor=None
            )
        )
        scope.add(register_skill(actor=member, project=project, name=f"{mark}_tool"))
        scope.add(
            register_skill(
                actor=member,
                project=None,
                tenant=project.tenant,
                name=f"{mark}_tenant_tool",
                visibility="tenant",
            )
        )
        add_session_items(
            project=project,
            session_id=f"{mark}-chat",
            items=[{"role": "user", "content": mark}],
            actor=None,
        )
        scope.add(project.session_items.get())
        scope.add(
            submit_job(
                project=project, kind="aging", params={"note": mark}, actor=member, enqueue=False
            )
        )
        issued = create_api_key(
            user=member,
            tenant=project.tenant,
            project=project,
            name=f"{mark}-key",
            role="reader",
            actor=None,
        )
        scope.add(ApiKey.objects.get(pk=issued.key.pk))
    for membership in Membership.objects.filter(user=member):
        scope.add(membership)
    scope.add(project)


@pytest.fixture
def staff_world(db: Any, settings: Any) -> StaffWorld:
    """acme (owner, project admin, project reader; sibling billing) and globex, all seeded."""
    from tenants.models import AuditEntry
    from tenants.services import create_api_key, ensure_project, set_membership

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    support = ensure_project("acme", "support", actor=None)
    billing = ensure_project("acme", "billing", actor=None)
    research = ensure_project("globex", "research", actor=None)
    owner = _user("owner@acme.test", staff=True)
    admin = _user("admin@acme.test", staff=True)
    reader = _user("reader@acme.test", staff=True)
    clerk = _user("clerk.billing@acme.test")
    boss = _user("boss@globex.test", staff=True)
    root = get_root()
    set_membership(user=owner, scope=support.tenant, role="owner", actor=None)
    set_membership(user=admin, scope=support, role="admin", actor=None)
    set_membership(user=reader, scope=support, role="reader", actor=None)
    set_membership(user=clerk, scope=billing, role="editor", actor=None)
    set_membership(user=boss, scope=research.tenant, role="owner", actor=None)
    owner_key = create_api_key(
        user=owner,
        tenant=support.tenant,
        project=support,
        name="owner-key",
        role="owner",
        actor=None,
    ).key
    world = StaffWorld(
        owner=owner,
        owner_key=owner_key,
        admin=admin,
        reader=reader,
        root=root,
        support=Scope(support, admin),
        billing=Scope(billing, clerk),
        research=Scope(research, boss),
    )
    _seed(world.support, "support")
    _seed(world.billing, SIBLING_MARK)
    _seed(world.research, FOREIGN_MARK)
    for scope in (world.support, world.billing, world.research):
        for entry in AuditEntry.objects.filter(project_id=scope.project.pk):
            scope.add(entry)
    for entry in AuditEntry.objects.filter(tenant_id=research.tenant_id):
        world.research.add(entry)
    world.research.add(research.tenant)
    return world


def get_root() -> Any:
    """The superuser of the suite."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser(
        username="root", email="root@localhost", password="pw-12345!"
    )
