"""Job creation, cancellation and status changes are audited with actor, tenant and request id."""

from __future__ import annotations

import pytest

from jobs.models import Job
from tenants.models import AuditEntry


def job_entries(job: Job) -> list[AuditEntry]:
    return list(
        AuditEntry.objects.filter(content_type__model="job", object_pk=str(job.pk)).order_by("id")
    )


@pytest.mark.urls("tests.jobs.urls")
def test_submitting_and_cancelling_through_the_api_is_audited(editor):
    client = editor.client()
    response = client.post(
        "/v1/test-echo",
        {"a": 1},
        format="json",
        HTTP_PREFER="respond-async",
        HTTP_X_REQUEST_ID="submit-1",
    )
    job = Job.objects.get(pk=response.json()["job_id"])
    client.post(f"/v1/jobs/{job.pk}/cancel", HTTP_X_REQUEST_ID="cancel-1")
    created, cancelled = job_entries(job)
    assert created.action == AuditEntry.Action.CREATE and created.cid == "submit-1"
    assert cancelled.action == AuditEntry.Action.UPDATE and cancelled.cid == "cancel-1"
    assert cancelled.changes["status"] == ["pending", "cancelled"]
    for entry in (created, cancelled):
        assert entry.actor == editor.user and entry.api_key_name == editor.key.name
        assert entry.tenant_id == editor.project.tenant_id
        assert entry.project_id == editor.project.pk


def test_a_jobs_own_transitions_name_its_actor_and_leave_out_noisy_fields(editor):
    from engramia_site.request_context import acting_as
    from jobs.services import run_job_inline, submit_job

    with acting_as(editor.user, api_key_name="bot-key", request_id="req-run"):
        job = submit_job(
            project=editor.project,
            kind="test.echo",
            params={"x": 1},
            enqueue=False,
            actor=editor.user,
        )
    run_job_inline(job)
    entries = job_entries(job)
    assert [entry.changes.get("status") for entry in entries] == [
        ["None", "pending"],
        ["pending", "running"],
        ["running", "succeeded"],
    ]
    noisy = {"progress_done", "progress_total", "heartbeat_at", "checkpoint", "result", "params"}
    for entry in entries:
        assert entry.actor == editor.user and entry.cid == "req-run"
        assert entry.api_key_name == "bot-key"
        assert not noisy & set(entry.changes)


def test_deleting_a_project_takes_its_jobs_along_and_audits_them(project_a, make_job):
    job = make_job(status="succeeded")
    project_id, tenant_id = project_a.pk, project_a.tenant_id
    project_a.delete()
    assert not Job.objects.filter(pk=job.pk).exists()
    deleted = AuditEntry.objects.get(
        content_type__model="job", object_pk=str(job.pk), action=AuditEntry.Action.DELETE
    )
    assert (deleted.tenant_id, deleted.project_id) == (tenant_id, project_id)
