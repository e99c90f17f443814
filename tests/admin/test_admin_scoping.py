"""Staff see and change only their own scope, in every admin, on every URL.

The personas are non-superuser staff of acme: the tenant owner, the admin of acme/support and a
reader of acme/support. Every registered admin is visited (changelist, add, change, delete,
history, each action, autocomplete), so a newly registered admin is covered without a new test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse
from pgvector.django import VectorField

from tests.admin.conftest import FOREIGN_MARK, SIBLING_MARK, Scope, StaffWorld

pytestmark = pytest.mark.django_db

PERSONAS = ["owner", "admin", "reader"]
OBJECT_VIEWS = ["change", "delete", "history"]
SNAPSHOT_APPS = {"auth", "admin", "tenants", "memory", "skills", "conversations", "jobs"}


def _persona(world: StaffWorld, name: str) -> Any:
    return getattr(world, name)


def _outside(world: StaffWorld, persona: str) -> list[Scope]:
    """The projects a persona holds no role in: globex, and for project staff the sibling too."""
    return [world.research] if persona == "owner" else [world.billing, world.research]


def _inside(world: StaffWorld, persona: str) -> list[Scope]:
    return [world.support, world.billing] if persona == "owner" else [world.support]


def _marks(persona: str) -> tuple[str, ...]:
    return (FOREIGN_MARK,) if persona == "owner" else (FOREIGN_MARK, SIBLING_MARK)


def _leaked(response: Any, marks: tuple[str, ...]) -> list[str]:
    text = response.content.decode(errors="replace").lower()
    return [mark for mark in marks if mark in text]


def _url(model: Any, view: str, *args: Any) -> str | None:
    try:
        return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)
    except NoReverseMatch:
        return None


def _objects(scopes: list[Scope], model: Any) -> list[Any]:
    return [obj for scope in scopes for obj in scope.objects.get(model._meta.label, [])]


def _autocomplete_queries() -> Iterator[dict[str, str]]:
    """Every relation of every model whose target has an admin: what the autocomplete serves."""
    for model in apps.get_models():
        for relation in model._meta.get_fields():
            target = getattr(getattr(relation, "remote_field", None), "model", None)
            if relation.concrete and relation.is_relation and target in admin.site._registry:
                yield {
                    "app_label": model._meta.app_label,
                    "model_name": model._meta.model_name,
                    "field_name": relation.name,
                    "term": "",
                }


def _action_names(model_admin: Any, superuser: Any) -> list[str]:
    request = RequestFactory().get("/admin/")
    request.user = superuser
    return list(model_admin.get_actions(request))


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the product's tables (vectors left out): what a refused write must not move."""
    state = {}
    for model in apps.get_models():
        if model._meta.app_label not in SNAPSHOT_APPS or model._meta.proxy:
            continue
        columns = [
            f.attname
            for f in model._meta.concrete_fields
            if not isinstance(f, VectorField) and f.attname != "last_login"  # set by logging in
        ]
        state[model._meta.label] = list(model.objects.order_by("pk").values_list(*columns))
    return state


def changed_tables(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(label for label in before if before[label] != after[label])


# --- cannot see outside ---------------------------------------------------------------------


def test_the_superuser_control_sees_both_markers(staff_world: StaffWorld) -> None:
    """Proves the markers are on the pages a leak would put them on."""
    client = staff_world.client(staff_world.root)
    shown = 0
    for model in admin.site._registry:
        for scope, mark in (
            (staff_world.research, FOREIGN_MARK),
            (staff_world.billing, SIBLING_MARK),
        ):
            if model._meta.label in scope.objects:
                assert _leaked(client.get(_url(model, "changelist")), (mark,)) == [mark], model
                shown += 1
    assert shown >= 15


@pytest.mark.parametrize("persona", PERSONAS)
def test_staff_see_nothing_outside_their_scope_on_any_page(
    staff_world: StaffWorld, persona: str
) -> None:
    client = staff_world.client(_persona(staff_world, persona))
    marks, problems = _marks(persona), []
    for model in admin.site._registry:
        for url in (_url(model, "changelist"), _url(model, "add")):
            page = client.get(url)
            if page.status_code not in (200, 302, 403) or _leaked(page, marks):
                problems.append(f"{url}: {page.status_code} {_leaked(page, marks)}")
        for view in OBJECT_VIEWS:
            for obj in _objects(_inside(staff_world, persona), model):
                url = _url(model, view, obj.pk)
                page = client.get(url)
                if page.status_code not in (200, 302, 403) or _leaked(page, marks):
                    problems.append(f"{url}: {page.status_code} {_leaked(page, marks)}")
            for obj in _objects(_outside(staff_world, persona), model):
                url = _url(model, view, obj.pk)
                page = client.get(url)
                opened = page.status_code == 200 or (
                    page.status_code == 302 and f"/{obj.pk}/" in page["Location"]
                )
                if opened or page.status_code >= 500 or _leaked(page, marks):
                    problems.append(f"{url} (outside) opened: {page.status_code}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("persona", PERSONAS)
def test_autocomplete_never_offers_anything_outside(staff_world: StaffWorld, persona: str) -> None:
    from django.contrib.auth.models import Permission

    user = _persona(staff_world, persona)
    # Even a model permission granted by hand does not open the user autocomplete to staff.
    user.user_permissions.set(Permission.objects.filter(codename="view_user"))
    client = staff_world.client(user)
    problems = []
    for query in _autocomplete_queries():
        answer = client.get("/admin/autocomplete/", query)
        if answer.status_code not in (200, 403, 404) or _leaked(answer, _marks(persona)):
            problems.append(f"{query}: {answer.status_code} {_leaked(answer, _marks(persona))}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("persona", PERSONAS)
def test_user_and_group_admins_are_for_superusers_only(
    staff_world: StaffWorld, persona: str
) -> None:
    from django.contrib.auth.models import Permission

    user = _persona(staff_world, persona)
    # Even model permissions granted by hand do not open the user admin to staff.
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="auth"))
    client = staff_world.client(user)
    for url in ("/admin/auth/user/", "/admin/auth/group/", f"/admin/auth/user/{user.pk}/change/"):
        assert client.get(url).status_code == 403, url
    client.post(
        f"/admin/auth/user/{user.pk}/change/",
        {"username": user.username, "email": user.email, "is_staff": "on", "is_superuser": "on"},
    )
    user.refresh_from_db()
    assert not user.is_superuser


def test_audit_type_filter_lists_only_engramia_models(staff_world: StaffWorld) -> None:
    page = staff_world.client(staff_world.owner).get("/admin/tenants/auditentry/")
    assert page.status_code == 200
    type_filter = next(
        spec
        for spec in page.context["cl"].filter_specs
        if getattr(spec, "field_path", "") == "content_type"
    )
    listed = [pk for pk, _name in type_filter.lookup_choices]
    labels = set(ContentType.objects.filter(pk__in=listed).values_list("app_label", flat=True))
    assert labels and labels <= {"tenants", "memory", "skills", "jobs", "conversations"}


# --- cannot write outside -------------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS)
def test_actions_never_touch_what_the_user_may_not_change(
    staff_world: StaffWorld, persona: str
) -> None:
    """Every action, run on objects outside (and for the reader, inside), changes nothing."""
    client = staff_world.client(_persona(staff_world, persona))
    scopes = _outside(staff_world, persona) + ([staff_world.support] if persona == "reader" else [])
    problems = []
    for model, model_admin in admin.site._registry.items():
        selected = [obj.pk for obj in _objects(scopes, model)]
        if persona == "admin" and model._meta.label == "tenants.ApiKey":
            selected.append(staff_world.owner_key.pk)  # an owner key is above a project admin
        for name in _action_names(model_admin, staff_world.root):
            before = snapshot()
            data = {"action": name, "_selected_action": selected, "index": 0}
            page = client.post(_url(model, "changelist"), data)  # a confirmation, if any
            if page.status_code >= 500 or _leaked(page, _marks(persona)):
                problems.append(f"{model._meta.label}.{name}: {page.status_code}")
            client.post(_url(model, "changelist"), {**data, "post": "yes"})
            if changed := changed_tables(before, snapshot()):
                problems.append(f"{model._meta.label}.{name} changed {changed}")
    assert not problems, "\n".join(problems)


def _add_key(world: StaffWorld, actor: Any, **fields: Any) -> Any:
    data = {"name": "probe", "role": "reader", "expires_at_0": "", "expires_at_1": "", **fields}
    return world.client(actor).post("/admin/tenants/apikey/add/", data)


KEY_PROBES = {
    "for B's user and project": lambda w: {
        "user": w.research.member.pk,
        "tenant": w.research.project.tenant_id,
        "project": w.research.project.pk,
    },
    "for B's user in the admin's project": lambda w: {
        "user": w.research.member.pk,
        "tenant": w.support.project.tenant_id,
        "project": w.support.project.pk,
    },
    "in the sibling project": lambda w: {
        "user": w.admin.pk,
        "tenant": w.billing.project.tenant_id,
        "project": w.billing.project.pk,
    },
    "for the sibling project's user": lambda w: {
        "user": w.billing.member.pk,
        "tenant": w.support.project.tenant_id,
        "project": w.support.project.pk,
    },
    "with the project under B's tenant": lambda w: {
        "user": w.admin.pk,
        "tenant": w.research.project.tenant_id,
        "project": w.support.project.pk,
    },
    "above the admin's own role": lambda w: {
        "user": w.admin.pk,
        "tenant": w.support.project.tenant_id,
        "project": w.support.project.pk,
        "role": "owner",
    },
    "tenant-wide, without a tenant role": lambda w: {
        "user": w.admin.pk,
        "tenant": w.support.project.tenant_id,
        "project": "",
    },
}


@pytest.mark.parametrize("probe", KEY_PROBES)
def test_project_admin_cannot_issue_a_key_outside_their_scope(
    staff_world: StaffWorld, probe: str
) -> None:
    before = snapshot()
    page = _add_key(staff_world, staff_world.admin, **KEY_PROBES[probe](staff_world))
    assert page.status_code in (200, 403)
    assert changed_tables(before, snapshot()) == []


def test_project_admin_issues_a_key_for_a_member_of_their_project(staff_world: StaffWorld) -> None:
    from tenants.models import ApiKey

    page = _add_key(
        staff_world,
        staff_world.admin,
        user=staff_world.reader.pk,
        tenant=staff_world.support.project.tenant_id,
        project=staff_world.support.project.pk,
    )
    assert page.status_code == 302
    assert ApiKey.objects.filter(name="probe", user=staff_world.reader).exists()


def test_tenant_owner_cannot_issue_a_key_in_another_tenant(staff_world: StaffWorld) -> None:
    before = snapshot()
    fields = KEY_PROBES["for B's user and project"](staff_world)
    _add_key(staff_world, staff_world.owner, **fields)
    _add_key(staff_world, staff_world.owner, **{**fields, "user": staff_world.owner.pk})
    assert changed_tables(before, snapshot()) == []


def _add_membership(world: StaffWorld, actor: Any, **fields: Any) -> Any:
    return world.client(actor).post("/admin/tenants/membership/add/", fields)


MEMBERSHIP_PROBES = {
    "self owner of B": lambda w: {
        "user": w.admin.pk,
        "tenant": w.research.project.tenant_id,
        "project": "",
        "role": "owner",
    },
    "self owner of B's project": lambda w: {
        "user": w.admin.pk,
        "tenant": w.research.project.tenant_id,
        "project": w.research.project.pk,
        "role": "owner",
    },
    "self owner of the own tenant": lambda w: {
        "user": w.admin.pk,
        "tenant": w.support.project.tenant_id,
        "project": "",
        "role": "owner",
    },
    "self admin of the sibling project": lambda w: {
        "user": w.admin.pk,
        "tenant": w.billing.project.tenant_id,
        "project": w.billing.project.pk,
        "role": "admin",
    },
    "B's user into the own project": lambda w: {
        "user": w.research.member.pk,
        "tenant": w.support.project.tenant_id,
        "project": w.support.project.pk,
        "role": "reader",
    },
}


@pytest.mark.parametrize("probe", MEMBERSHIP_PROBES)
def test_project_admin_cannot_grant_a_role_outside_their_scope(
    staff_world: StaffWorld, probe: str
) -> None:
    before = snapshot()
    page = _add_membership(staff_world, staff_world.admin, **MEMBERSHIP_PROBES[probe](staff_world))
    assert page.status_code in (200, 403)
    assert changed_tables(before, snapshot()) == []


@pytest.mark.parametrize("probe", ["self owner of B", "self owner of B's project"])
def test_tenant_owner_cannot_make_themselves_owner_of_another_tenant(
    staff_world: StaffWorld, probe: str
) -> None:
    before = snapshot()
    fields = {**MEMBERSHIP_PROBES[probe](staff_world), "user": staff_world.owner.pk}
    _add_membership(staff_world, staff_world.owner, **fields)
    assert changed_tables(before, snapshot()) == []


def test_tenant_owner_adds_a_tenant_member_to_another_project(staff_world: StaffWorld) -> None:
    from tenants.roles import effective_role

    page = _add_membership(
        staff_world,
        staff_world.owner,
        user=staff_world.billing.member.pk,
        tenant=staff_world.support.project.tenant_id,
        project=staff_world.support.project.pk,
        role="editor",
    )
    assert page.status_code == 302
    assert effective_role(staff_world.billing.member, staff_world.support.project) == "editor"


def _membership(user: Any, project: Any) -> Any:
    from tenants.models import Membership

    return Membership.objects.get(user=user, project=project)


@pytest.mark.parametrize("member", ["reader", "admin"])
def test_project_admin_cannot_raise_a_membership_above_their_role(
    staff_world: StaffWorld, member: str
) -> None:
    membership = _membership(_persona(staff_world, member), staff_world.support.project)
    before = snapshot()
    staff_world.client(staff_world.admin).post(
        f"/admin/tenants/membership/{membership.pk}/change/",
        {
            "user": membership.user_id,
            "tenant": membership.tenant_id,
            "project": membership.project_id,
            "role": "owner",
        },
    )
    assert changed_tables(before, snapshot()) == []


def test_project_admin_changes_a_reader_to_editor(staff_world: StaffWorld) -> None:
    from tenants.roles import effective_role

    membership = _membership(staff_world.reader, staff_world.support.project)
    page = staff_world.client(staff_world.admin).post(
        f"/admin/tenants/membership/{membership.pk}/change/", {"role": "editor"}
    )
    assert page.status_code == 302
    assert effective_role(staff_world.reader, staff_world.support.project) == "editor"


def test_project_admin_cannot_move_a_membership_out_of_their_project(
    staff_world: StaffWorld,
) -> None:
    membership = _membership(staff_world.reader, staff_world.support.project)
    staff_world.client(staff_world.admin).post(
        f"/admin/tenants/membership/{membership.pk}/change/",
        {
            "user": staff_world.research.member.pk,
            "tenant": staff_world.research.project.tenant_id,
            "project": staff_world.research.project.pk,
            "role": "reader",
        },
    )
    membership.refresh_from_db()
    assert (membership.user_id, membership.project_id) == (
        staff_world.reader.pk,
        staff_world.support.project.pk,
    )
    assert (
        not get_user_model()
        .objects.get(pk=staff_world.research.member.pk)
        .memberships.filter(project=staff_world.support.project)
    )


def test_project_admin_cannot_revoke_or_delete_the_owners_key(staff_world: StaffWorld) -> None:
    client = staff_world.client(staff_world.admin)
    key = staff_world.owner_key
    assert client.get(f"/admin/tenants/apikey/{key.pk}/delete/").status_code == 403
    client.post(f"/admin/tenants/apikey/{key.pk}/delete/", {"post": "yes"})
    key.refresh_from_db()
    assert key.revoked_at is None


def _add_project(world: StaffWorld, actor: Any, tenant: Any) -> Any:
    data = {
        "tenant": tenant.pk,
        "slug": "probe",
        "name": "Probe",
        "instructions": "",
        "llm_provider": "",
        "llm_model": "",
    }
    return world.client(actor).post("/admin/tenants/project/add/", data)


def test_tenant_owner_creates_projects_in_their_tenant_only(staff_world: StaffWorld) -> None:
    from tenants.models import Project

    before = snapshot()
    page = _add_project(staff_world, staff_world.owner, staff_world.research.project.tenant)
    assert page.status_code in (200, 403)
    assert changed_tables(before, snapshot()) == []
    page = _add_project(staff_world, staff_world.owner, staff_world.support.project.tenant)
    assert page.status_code == 302
    assert Project.objects.get(slug="probe").tenant == staff_world.support.project.tenant


@pytest.mark.parametrize("persona", PERSONAS)
def test_staff_cannot_create_tenants(staff_world: StaffWorld, persona: str) -> None:
    client = staff_world.client(_persona(staff_world, persona))
    before = snapshot()
    page = client.post("/admin/tenants/tenant/add/", {"slug": "probe", "name": "Probe"})
    assert page.status_code == 403
    assert changed_tables(before, snapshot()) == []


@pytest.mark.parametrize("persona", ["admin", "reader"])
def test_project_staff_cannot_create_projects(staff_world: StaffWorld, persona: str) -> None:
    before = snapshot()
    actor = _persona(staff_world, persona)
    page = _add_project(staff_world, actor, staff_world.support.project.tenant)
    assert page.status_code == 403
    assert changed_tables(before, snapshot()) == []


@pytest.mark.parametrize("persona", ["owner", "admin"])
def test_a_projects_tenant_never_changes(staff_world: StaffWorld, persona: str) -> None:
    project = staff_world.support.project
    home = project.tenant_id
    staff_world.client(_persona(staff_world, persona)).post(
        f"/admin/tenants/project/{project.pk}/change/",
        {
            "tenant": staff_world.research.project.tenant_id,
            "slug": project.slug,
            "name": project.name,
            "instructions": "",
            "llm_provider": "",
            "llm_model": "",
        },
    )
    project.refresh_from_db()
    assert project.tenant_id == home != staff_world.research.project.tenant_id


@pytest.mark.parametrize(
    "fields",
    [
        {"tenant": "research", "project": "support"},
        {"tenant": "support", "project": "support", "expires_at_0": "2000-01-01"},
    ],
    ids=["project of another tenant", "expiry in the past"],
)
def test_a_bad_key_form_is_a_form_error_even_for_a_superuser(
    staff_world: StaffWorld, fields: dict[str, str]
) -> None:
    places = {"support": staff_world.support.project, "research": staff_world.research.project}
    data = {
        "user": staff_world.admin.pk,
        "tenant": places[fields["tenant"]].tenant_id,
        "project": places[fields["project"]].pk,
        "expires_at_0": fields.get("expires_at_0", ""),
        "expires_at_1": "00:00:00" if "expires_at_0" in fields else "",
    }
    before = snapshot()
    page = _add_key(staff_world, staff_world.root, **data)
    assert page.status_code == 200
    assert page.context["adminform"].form.errors
    assert changed_tables(before, snapshot()) == []


@pytest.mark.parametrize(("persona", "mark"), [("owner", SIBLING_MARK), ("admin", "support")])
def test_staff_still_see_and_filter_their_own_scope(
    staff_world: StaffWorld, persona: str, mark: str
) -> None:
    client = staff_world.client(_persona(staff_world, persona))
    for url in ("/admin/memory/pattern/", "/admin/tenants/apikey/", "/admin/tenants/auditentry/"):
        page = client.get(url)
        assert _leaked(page, (mark,)) == [mark], url
    filters = client.get("/admin/memory/pattern/").context["cl"].filter_specs
    specs = {getattr(spec, "field_path", ""): spec for spec in filters}
    paths = sorted(scope.project.path for scope in _inside(staff_world, persona))
    if len(paths) == 1:  # a filter with a single choice is not shown
        assert "project" not in specs
    else:
        assert sorted(name for _pk, name in specs["project"].lookup_choices) == paths


def test_project_admin_revokes_a_key_of_their_project(staff_world: StaffWorld) -> None:
    key = staff_world.support.objects["tenants.ApiKey"][0]
    staff_world.client(staff_world.admin).post(
        "/admin/tenants/apikey/",
        {"action": "revoke_keys", "_selected_action": [key.pk, staff_world.owner_key.pk]},
    )
    key.refresh_from_db()
    staff_world.owner_key.refresh_from_db()
    assert key.revoked_at is not None
    assert staff_world.owner_key.revoked_at is None


def test_deleting_memberships_in_bulk_takes_their_roles_away(staff_world: StaffWorld) -> None:
    from tenants.roles import effective_role

    membership = _membership(staff_world.reader, staff_world.support.project)
    staff_world.client(staff_world.admin).post(
        "/admin/tenants/membership/",
        {"action": "delete_selected", "_selected_action": [membership.pk], "post": "yes"},
    )
    assert effective_role(staff_world.reader, staff_world.support.project) is None


def test_a_grant_is_checked_again_when_saved(staff_world: StaffWorld) -> None:
    """A role lost between the form's check and the write refuses the write (403, rolled back)."""
    from django.core.exceptions import PermissionDenied

    from tenants.models import Membership
    from tenants.services import remove_membership

    request = RequestFactory().post("/admin/tenants/apikey/add/")
    request.user = staff_world.admin
    key_admin = admin.site.get_model_admin(apps.get_model("tenants", "ApiKey"))
    form = key_admin.get_form(request)(
        {
            "user": staff_world.reader.pk,
            "tenant": staff_world.support.project.tenant_id,
            "project": staff_world.support.project.pk,
            "name": "probe",
            "role": "reader",
        }
    )
    assert form.is_valid(), form.errors
    remove_membership(Membership.objects.get(user=staff_world.admin), actor=None)
    with pytest.raises(PermissionDenied):
        key_admin.save_form(request, form, change=False)
