"""Importing with group_by: only a tenant-wide admin key of a tenant admin may write into the
projects an export names; a project key imports into its own project only."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from jobs.models import Job, Upload
from jobs.services import run_job_inline
from memory.models import Pattern
from memory.services import learn_pattern
from tenants.choices import Role
from tenants.models import Project
from tenants.services import create_api_key, ensure_project, set_membership
from tests.assistants.test_import import export_bytes, line
from tests.conftest import make_persona

# A thread named like the sibling project: grouping by thread would land in acme/billing.
EXPORT = export_bytes(
    line("billing", 1, "user", "Where is my refund?", assistant="asst_Billing"),
    line("billing", 2, "assistant", "Refunded.", assistant="asst_Billing"),
    line("t2", 1, "user", "What is a mutex?"),
    line("t2", 2, "assistant", "A lock."),
)


@pytest.fixture
def billing(project_a: Any) -> Project:
    sibling = ensure_project("acme", "billing", actor=None)
    learn_pattern(project=sibling, task="billing's own task", code="billing's own code", actor=None)
    return sibling


def _post(client: APIClient, group_by: str, **extra: Any) -> Any:
    return client.post(
        f"/v1/import/assistants?group_by={group_by}",
        EXPORT,
        content_type="application/x-ndjson",
        **extra,
    )


def _tenant_wide_client(user: Any, tenant: Any, role: str = "admin") -> tuple[APIClient, Any]:
    issued = create_api_key(
        user=user, tenant=tenant, project=None, name="wide", role=role, actor=None
    )
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {issued.secret}", HTTP_X_ENGRAMIA_PROJECT="support"
    )
    return client, issued.key


@pytest.mark.parametrize("group_by", ["thread", "assistant"])
def test_a_project_key_cannot_group_into_sibling_projects(owner, billing, group_by):
    projects_before = set(Project.objects.values_list("slug", flat=True))
    for dry_run in ("false", "true"):
        response = owner.client().post(
            f"/v1/import/assistants?group_by={group_by}&dry_run={dry_run}",
            EXPORT,
            content_type="application/x-ndjson",
        )
        assert response.status_code == 403, response.content
        (error,) = response.json()["errors"]
        assert "group_by" in error["detail"] and "tenant-wide" in error["detail"]
    assert not Job.objects.exists() and not Upload.objects.exists()
    assert set(Project.objects.values_list("slug", flat=True)) == projects_before
    assert list(Pattern.objects.filter(project=billing).values_list("task", flat=True)) == [
        "billing's own task"
    ]


def test_a_project_key_still_imports_into_its_own_project(owner, billing):
    response = _post(owner.client(), "none")
    assert response.status_code == 202
    job = run_job_inline(Job.objects.get(pk=response.json()["job_id"]))
    assert job.status == "succeeded" and job.result["projects"] == ["acme/support"]
    assert Pattern.objects.filter(project=owner.project).count() == 2
    assert Pattern.objects.filter(project=billing).count() == 1


def test_a_tenant_wide_admin_key_of_a_tenant_admin_may_group(owner, billing):
    client, _ = _tenant_wide_client(owner.user, owner.project.tenant)
    response = _post(client, "thread")
    assert response.status_code == 202, response.content
    job = run_job_inline(Job.objects.get(pk=response.json()["job_id"]))
    assert job.status == "succeeded", job.error
    assert sorted(job.result["projects"]) == ["acme/billing", "acme/t2"]
    assert Pattern.objects.filter(project=billing).count() == 2


def test_grouping_needs_a_tenant_role_and_an_admin_capped_key(project_a, billing):
    project_admin = make_persona("padmin@acme.test", project_a, "admin")
    client, _ = _tenant_wide_client(project_admin.user, project_a.tenant)
    assert _post(client, "thread").status_code == 403  # admin of one project only
    tenant_admin = make_persona("tadmin@acme.test", project_a, "admin", tenant_role=True)
    assert _post(tenant_admin.client(), "thread").status_code == 403  # a project key
    editor_key_client, _ = _tenant_wide_client(tenant_admin.user, project_a.tenant, "editor")
    assert _post(editor_key_client, "thread").status_code == 403  # import needs admin anyway
    assert not Job.objects.exists()
    assert Pattern.objects.filter(project=billing).count() == 1


@pytest.mark.parametrize("change", ["demoted", "revoked"])
def test_the_job_checks_again_before_writing(owner, billing, change):
    client, key = _tenant_wide_client(owner.user, owner.project.tenant)
    response = _post(client, "thread")
    assert response.status_code == 202
    if change == "demoted":
        set_membership(user=owner.user, scope=owner.project.tenant, role=Role.EDITOR, actor=None)
    else:
        from tenants.services import OPERATOR, revoke_api_key

        revoke_api_key(key, actor=OPERATOR)
    job = run_job_inline(Job.objects.get(pk=response.json()["job_id"]))
    assert job.status == "failed" and "group_by" in job.error
    assert Pattern.objects.filter(project=billing).count() == 1
    assert not Project.objects.filter(slug="t2").exists()
    assert not Upload.objects.exists()


def test_the_operator_may_group_from_the_command_line(project_a, billing, tmp_path, capsys):
    export = tmp_path / "export.ndjson"
    export.write_bytes(EXPORT)
    call_command(
        "assistants_import", str(export), "--project", "acme/support", "--group-by", "thread",
        "--json",
    )  # fmt: skip
    payload = json.loads(capsys.readouterr().out)
    assert sorted(payload["projects"]) == ["acme/billing", "acme/t2"]
    assert Pattern.objects.filter(project=billing).count() == 2


def test_the_importer_refuses_grouping_for_a_project_key(owner, billing):
    from assistants.importer import ImportNotAllowed, import_assistants_export

    with pytest.raises(ImportNotAllowed):
        import_assistants_export(
            project=owner.project,
            stream=io.BytesIO(EXPORT),
            group_by="thread",
            api_key=owner.key,
            actor=None,
        )
    assert Pattern.objects.filter(project=billing).count() == 1
