"""A worker killed with SIGKILL in the middle of a bulk job: the job resumes and finishes once."""

from __future__ import annotations

import signal
import time

import pytest
from django.contrib.auth.models import Group

from jobs.models import Job
from jobs.services import submit_job
from tenants.models import AuditEntry
from tests.jobs.conftest import wait_for

ITEMS = 60


def stored_items() -> list[str]:
    return list(Group.objects.filter(name__startswith="item-").values_list("name", flat=True))


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_killed_worker_mid_bulk_job_resumes_from_checkpoint_storing_every_item_once(
    project_a, start_worker
):
    first = start_worker()
    job = submit_job(
        project=project_a,
        kind="test.bulk_groups",
        params={"count": ITEMS, "delay": 0.05},
        actor=None,
    )
    wait_for(
        lambda: (Job.objects.get(pk=job.pk).checkpoint or {}).get("next", 0) >= 15,
        timeout=40,
        what="the bulk job to checkpoint",
        log=first.log_tail,
    )
    first.kill(signal.SIGKILL)
    time.sleep(0.3)  # let statements the dead worker already sent settle

    at_kill = Job.objects.get(pk=job.pk)
    resume_point = at_kill.checkpoint["next"]
    stored_at_kill = len(stored_items())
    assert at_kill.status == "running" and at_kill.attempts == 1  # nobody knows it is dead yet
    assert 0 < resume_point <= stored_at_kill < ITEMS

    second = start_worker()
    done = wait_for(
        lambda: (current := Job.objects.get(pk=job.pk)).is_finished and current,
        timeout=40,
        what="the job to finish on the new worker",
        log=second.log_tail,
    )
    assert done.status == "succeeded", done.error
    assert done.attempts == 2
    assert done.result == {
        "stored": ITEMS,
        "resumed_from": resume_point,  # not 0: it resumed rather than restarted
        "created_this_attempt": ITEMS - stored_at_kill,
    }
    assert sorted(stored_items()) == sorted(f"item-{number}" for number in range(ITEMS))
    assert (done.progress_done, done.progress_total, done.error) == (ITEMS, ITEMS, "")
    recovered = AuditEntry.objects.get(
        content_type__model="job", object_pk=str(job.pk), changes__status=["running", "pending"]
    )
    assert recovered.actor_email == "jobs:recovery"
