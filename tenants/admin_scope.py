"""Admin plumbing: staff see, pick and change only what their roles allow (superusers see all).

One place decides, for every admin, which rows a staff member sees (`view_role`) and changes
(`change_role`), which values a foreign key or a list filter offers, and whether a form's target
lies in the staff member's scope. The form check runs in `clean()` (a form error) and again in
`save_form()`, inside the admin's transaction, just before the write (a 403 that rolls back).
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode
from unfold.admin import ModelAdmin as ThemedModelAdmin

from tenants.choices import ROLE_ORDER, Role
from tenants.models import Membership, Project, Tenant
from tenants.querysets import (
    scope_q,
    tenant_ids_touched,
    tenant_ids_with_role,
    visible_project_ids,
)
from tenants.roles import effective_role, tenant_role

# Why a save is refused, by form field (None: the form as a whole).
Errors = dict[str | None, str]

# The apps whose models the audit log records; the audit type filter offers nothing else.
ENGRAMIA_APPS = ("tenants", "memory", "skills", "jobs", "conversations")


def members_of(user: Any, action: str | Role) -> QuerySet[Any]:
    """Users who hold a membership where user may perform action, and user themselves."""
    members = Membership.objects.filter(
        scope_q(user, action, project="project_id")
        | Q(tenant_id__in=tenant_ids_with_role(user, action))
    ).values("user_id")
    return get_user_model().objects.filter(Q(pk__in=members) | Q(pk=user.pk))


def manageable_users(user: Any) -> QuerySet[Any]:
    """Users a staff member may name on a new membership or key (see MembershipAdmin)."""
    return members_of(user, Role.ADMIN)


def role_held(user: Any, tenant_id: Any, project_id: Any) -> Role | None:
    """User's role on a project (tenant role included) or, with no project, on the whole tenant."""
    if project_id is not None:
        project = Project.objects.filter(pk=project_id).first()
        return effective_role(user, project) if project is not None else None
    return tenant_role(user, tenant_id) if tenant_id is not None else None


def grant_errors(
    staff: Any, *, user: Any, tenant_id: Any, project_id: Any, role: str, new: bool
) -> Errors:
    """Why staff may not give user a role (membership or key) there; empty when they may.

    Staff need the admin role where they grant, may grant at most their own role there (so only an
    owner makes owners), and act for another user only when they hold at least that user's role.
    A new grant must also name a user staff may manage.
    """
    where = "project" if project_id is not None else "tenant"
    held = role_held(staff, tenant_id, project_id)
    if held is None or not held.covers(Role.ADMIN):
        if project_id is None:
            return {where: "Tenant-wide memberships and keys need the admin role on the tenant."}
        return {where: "You need the admin role on this project."}
    errors: Errors = {}
    if role and not held.covers(Role(role)):
        errors["role"] = f"You may grant at most your own role here ({held.value})."
    if user is None or user.pk == staff.pk:
        return errors
    if new and not manageable_users(staff).filter(pk=user.pk).exists():
        errors["user"] = "Choose a member of a project or tenant you administer."
    else:
        theirs = role_held(user, tenant_id, project_id)
        if theirs is not None and not held.covers(theirs):
            errors["user"] = f"This user holds a higher role here ({theirs.value}) than you."
    return errors


def highest_admin_role(user: Any) -> Role:
    """The highest role user may hand out anywhere: owner if they own something, else admin."""
    if user.is_superuser or visible_project_ids(user, Role.OWNER).exists():
        return Role.OWNER
    return Role.OWNER if tenant_ids_with_role(user, Role.OWNER).exists() else Role.ADMIN


def visible_related(model: type[Model], request: HttpRequest) -> QuerySet[Any]:
    """The rows of a related model a user may see named in a filter or a choice."""
    user = request.user
    if model is ContentType:
        return ContentType.objects.filter(app_label__in=ENGRAMIA_APPS)
    if user.is_superuser:
        return model._default_manager.all()
    if model is Tenant:
        return Tenant.objects.restrict(user, "view")
    if model is Project:
        return Project.objects.restrict(user, "view")
    if model is get_user_model():
        return members_of(user, "view")
    related_admin = admin.site._registry.get(model)
    if related_admin is not None and related_admin.has_view_permission(request):
        return related_admin.get_queryset(request)
    return model._default_manager.none()


class ScopedRelatedFilter(admin.RelatedOnlyFieldListFilter):
    """A foreign-key filter offering only values used by the user's rows and inside their scope."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> list[Any]:
        used = model_admin.get_queryset(request).values(f"{self.field_path}__pk")
        choices = visible_related(field.related_model, request).filter(pk__in=used)
        if field.related_model is Project:
            choices = choices.select_related("tenant")  # a project is named with its tenant
        ordering = self.field_admin_ordering(field, request, model_admin)
        if ordering:
            choices = choices.order_by(*ordering)
        return [(obj.pk, str(obj)) for obj in choices]


class VisibleProjectFilter(ScopedRelatedFilter):
    """A project filter offering every project the user may view, without scanning the rows.

    For large tables (patterns): listing only the projects used by the user's rows would read
    every row of the table on each page.
    """

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> list[Any]:
        projects = Project.objects.restrict(request.user, "view").select_related("tenant")
        return [(project.pk, str(project)) for project in projects.order_by("tenant__slug", "slug")]


def scoped_filter(model: type[Model], spec: Any) -> Any:
    """A list_filter entry, with a plain foreign-key name turned into a ScopedRelatedFilter."""
    if not isinstance(spec, str):
        return spec
    try:
        field = get_fields_from_path(model, spec)[-1]
    except FieldDoesNotExist:
        return spec
    return (spec, ScopedRelatedFilter) if field.is_relation else spec


class ScopedModelForm(forms.ModelForm):  # type: ignore[type-arg]
    """A form that refuses, as a form error, a target outside the staff member's scope."""

    scope_admin: ClassVar[Any] = None
    scope_request: ClassVar[HttpRequest | None] = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.scope_admin is None or self.errors:
            return cleaned
        candidate = copy.copy(self.instance)
        columns = {f.name for f in candidate._meta.concrete_fields}
        for name, value in cleaned.items():
            if name in columns:
                setattr(candidate, name, value)
        original = self.instance if self.instance.pk is not None else None
        for name, message in self.scope_admin.form_errors(
            self.scope_request, candidate, original
        ).items():
            self.add_error(name if name in self.fields else None, message)
        return cleaned


class ScopedAdminMixin:
    """Filter an admin by the user's projects (and tenants); changes need `change_role` there.

    scope_field names the owning project's id; models whose rows may belong to a whole tenant
    (project empty) also set tenant_field, and such rows need the role on the whole tenant.
    """

    scope_field = "project_id"
    tenant_field: str | None = None
    view_role = Role.READER
    change_role = Role.ADMIN
    checks_each_object = False  # True when object_errors adds rules the scope filter cannot
    form: type[forms.ModelForm[Any]] = ScopedModelForm

    def scope_filter(self, user: Any, action: str | Role) -> Q:
        """The rows where user may perform action."""
        return scope_q(user, action, project=self.scope_field, tenant=self.tenant_field)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)  # type: ignore[misc]
        if request.user.is_superuser:
            return queryset
        if self.scope_field == "project_id" and hasattr(queryset, "restrict"):
            # A project-owned model's own rule (tenants.querysets), as services apply it.
            return queryset.restrict(request.user, self.view_role)
        return queryset.filter(self.scope_filter(request.user, self.view_role))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def administers_something(self, user: Any) -> bool:
        """True when user holds change_role on some project (or tenant, for tenant-wide rows)."""
        # Every admin page asks each admin this (the sidebar's app list): once per user and role.
        cache = user.__dict__.setdefault("_administers_something", {})
        key = (self.change_role, self.tenant_field is not None)
        if key not in cache:
            cache[key] = visible_project_ids(user, self.change_role).exists() or (
                key[1] and tenant_ids_with_role(user, self.change_role).exists()
            )
        return bool(cache[key])

    def object_errors(self, request: HttpRequest, obj: Any, *, new: bool) -> Errors:
        """Rules beyond the scope filter (role caps); obj is as it would be saved."""
        return {}

    def _may_change(self, request: HttpRequest, obj: Any) -> bool:
        user = request.user
        if user.is_superuser:
            return True
        if not (user.is_active and user.is_staff):
            return False
        if obj is None:
            return self.administers_something(user)
        manager = self.model._default_manager  # type: ignore[attr-defined]
        if not manager.filter(self.scope_filter(user, self.change_role), pk=obj.pk).exists():
            return False
        return not self.object_errors(request, obj, new=False)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_change(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_change(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._may_change(request, None)

    def target_errors(self, request: HttpRequest, obj: Any) -> Errors:
        """Why obj's project (or tenant) is outside what the user may change."""
        user = request.user
        project_id = getattr(obj, "project_id", None)
        tenant_id = getattr(obj, "tenant_id", None)
        if project_id is not None:
            allowed = Project.objects.filter(id__in=visible_project_ids(user, self.change_role))
            project = allowed.filter(pk=project_id).first()
            if project is None:
                return {"project": f"You need the {self.change_role.value} role on this project."}
            return {}
        if self.tenant_field is not None and tenant_id is not None:
            tenants = tenant_ids_with_role(user, self.change_role)
            if not tenants.filter(content_object_id=tenant_id).exists():
                return {"tenant": f"You need the {self.change_role.value} role on the tenant."}
            return {}
        return {None: "This is outside the projects you may change."}

    def consistency_errors(self, candidate: Any) -> Errors:
        """Mistakes anyone can make, superusers too: a form error rather than a failed save."""
        project_id = getattr(candidate, "project_id", None)
        tenant_id = getattr(candidate, "tenant_id", None)
        if project_id is None or tenant_id is None:
            return {}
        if not Project.objects.filter(pk=project_id, tenant_id=tenant_id).exists():
            return {"project": "The project belongs to another tenant."}
        return {}

    def form_errors(self, request: HttpRequest, candidate: Any, original: Any) -> Errors:
        """Why the user may not save candidate (the form's values over original, or a new row)."""
        errors = self.consistency_errors(candidate)
        if errors or request.user.is_superuser:
            return errors
        if original is not None and not self._may_change(request, original):
            return {None: "You may not change this."}
        errors = self.target_errors(request, candidate)
        if not errors:
            errors.update(self.object_errors(request, candidate, new=original is None))
        return errors

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)  # type: ignore[misc]
        return type(form.__name__, (form,), {"scope_admin": self, "scope_request": request})

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Any:
        # Checked again inside the admin's transaction, against the roles held right now and the
        # locked original, before save_model writes: a race with a role change cannot slip through.
        obj = super().save_form(request, form, change)  # type: ignore[misc]
        if request.user.is_superuser:
            return obj
        manager = self.model._default_manager  # type: ignore[attr-defined]
        original = manager.select_for_update().get(pk=obj.pk) if change else None
        if self.form_errors(request, obj, original):
            raise PermissionDenied("This change is outside what you may change.")
        return obj

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if not request.user.is_superuser:
            kwargs["queryset"] = self.choices_for(db_field, request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def choices_for(self, db_field: Any, request: HttpRequest) -> QuerySet[Any]:
        """What a staff member may pick for a foreign key: only what they may change."""
        model, user = db_field.related_model, request.user
        if model is Project:
            allowed = visible_project_ids(user, self.change_role)
            return Project.objects.filter(id__in=allowed).select_related("tenant")
        if model is Tenant:
            return Tenant.objects.filter(tenant_ids_touched(user, self.change_role))
        if model is get_user_model():
            return manageable_users(user)
        return visible_related(model, request)

    def formfield_for_choice_field(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "role" and not request.user.is_superuser:
            top = highest_admin_role(request.user)
            kwargs["choices"] = [(r.value, r.label) for r in ROLE_ORDER if top.covers(r)]
        return super().formfield_for_choice_field(db_field, request, **kwargs)  # type: ignore[misc]

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = super().get_list_filter(request)  # type: ignore[misc]
        return [scoped_filter(self.model, spec) for spec in filters]  # type: ignore[attr-defined]

    def response_action(
        self, request: HttpRequest, queryset: QuerySet[Any], *args: Any
    ) -> HttpResponse | None:
        """Run an action on the selected rows the user may change; say how many were left alone."""
        allowed = self.changeable(request, queryset)
        selected = request.POST.getlist(ACTION_CHECKBOX_NAME)
        if selected and request.POST.get("select_across") != "1":
            try:
                skipped = len(set(selected)) - allowed.filter(pk__in=selected).count()
            except (ValueError, ValidationError):
                message = "Select items from the list."
                self.message_user(request, message, messages.ERROR)  # type: ignore[attr-defined]
                return None
            if skipped > 0:
                self.message_user(  # type: ignore[attr-defined]
                    request,
                    f"{skipped} selected item(s) are outside what you may change: left alone.",
                    messages.WARNING,
                )
        return super().response_action(request, allowed, *args)  # type: ignore[misc]

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: Any = None
    ) -> HttpResponse:
        """An object's history is its audit trail: the audit log, filtered to the object."""
        model = self.model  # type: ignore[attr-defined]
        obj = self.get_object(request, object_id)  # type: ignore[attr-defined]
        if obj is None:
            return self._get_obj_does_not_exist_redirect(  # type: ignore[attr-defined]
                request, model._meta, object_id
            )
        if not self.has_view_permission(request, obj):
            raise PermissionDenied
        content_type = ContentType.objects.get_for_model(model)
        query = urlencode({"content_type__id__exact": content_type.pk, "object_pk": obj.pk})
        return HttpResponseRedirect(f"{reverse('admin:tenants_auditentry_changelist')}?{query}")

    def changeable(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """The rows of queryset the user may change (role caps included)."""
        if request.user.is_superuser:
            return queryset
        queryset = queryset.filter(self.scope_filter(request.user, self.change_role))
        if self.checks_each_object:
            keep = [obj.pk for obj in queryset if not self.object_errors(request, obj, new=False)]
            queryset = queryset.filter(pk__in=keep)
        return queryset


class SuperuserOnlyMixin:
    """For framework admins (users, groups, the task queue): superusers only, whatever the perms."""

    def _superuser(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._superuser(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._superuser(request)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self._superuser(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._superuser(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._superuser(request)


def restrict_to_superusers(*models: type[Model]) -> None:
    """Re-register the admins of models (registered by their apps) as superuser-only, themed."""
    for model in models:
        if not admin.site.is_registered(model):
            continue
        current = type(admin.site.get_model_admin(model))
        admin.site.unregister(model)
        name = f"SuperuserOnly{current.__name__}"
        bases: tuple[type, ...] = (SuperuserOnlyMixin, current)
        if not issubclass(current, ThemedModelAdmin):
            bases = (*bases, ThemedModelAdmin)
        admin.site.register(model, type(name, bases, {}))
