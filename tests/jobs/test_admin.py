"""The jobs admin: a scoped list at a fixed query cost, a read-only detail, a cancel action."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from jobs.models import Job
from tenants.services import set_membership

CHANGELIST = "/admin/jobs/job/"


def staff_client(project: Any, role: str, email: str) -> Client:
    user = get_user_model().objects.create_user(
        username=email, email=email, password="pw-12345!", is_staff=True
    )
    set_membership(user=user, scope=project, role=role, actor=None)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def superuser_client(db: Any) -> Client:
    user = get_user_model().objects.create_superuser(
        username="root", email="root@x.test", password="pw-12345!"
    )
    client = Client()
    client.force_login(user)
    return client


def test_staff_see_only_their_projects_jobs(project_a, project_b, make_job):
    mine = make_job("test.echo")
    theirs = make_job("test.secret-kind", project=project_b)
    page = staff_client(project_a, "reader", "staff@acme.test").get(CHANGELIST)
    assert page.status_code == 200
    ids = [row.pk for row in page.context["cl"].result_list]
    assert ids == [mine.pk]
    assert b"test.secret-kind" not in page.content  # not even as a kind filter choice
    assert b"globex" not in page.content
    assert (
        staff_client(project_a, "reader", "r2@acme.test")
        .get(f"{CHANGELIST}{theirs.pk}/change/")
        .status_code
        == 302
    )


def test_list_filters_by_status_kind_and_project(superuser_client, project_b, make_job):
    running = make_job("test.slow", status="running")
    make_job("test.echo", status="succeeded")
    other = make_job("test.slow", status="running", project=project_b)
    filtered = superuser_client.get(CHANGELIST, {"status__exact": "running", "kind": "test.slow"})
    assert {row.pk for row in filtered.context["cl"].result_list} == {running.pk, other.pk}
    by_project = superuser_client.get(CHANGELIST, {"project__id__exact": project_b.pk})
    assert [row.pk for row in by_project.context["cl"].result_list] == [other.pk]


def test_list_costs_a_fixed_number_of_queries(
    superuser_client, project_b, make_job, django_assert_max_num_queries
):
    make_job()
    with django_assert_max_num_queries(40) as few:
        superuser_client.get(CHANGELIST)
    for number in range(15):
        make_job(
            f"test.kind-{number % 3}",
            project=project_b if number % 2 else None,
            status="running",
            progress_done=number,
            progress_total=20,
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = superuser_client.get(CHANGELIST)
    assert page.context["cl"].result_count == 16


def test_detail_is_read_only(superuser_client, make_job):
    job = make_job(params={"task": "<script>x</script>"}, result={"ok": True})
    page = superuser_client.get(f"{CHANGELIST}{job.pk}/change/")
    assert page.status_code == 200
    assert b"&lt;script&gt;" in page.content and b"<script>x" not in page.content
    assert b'name="_save"' not in page.content
    post = superuser_client.post(f"{CHANGELIST}{job.pk}/change/", {"kind": "hacked"})
    assert post.status_code == 403
    assert Job.objects.get(pk=job.pk).kind == "test.echo"
    assert superuser_client.get(f"{CHANGELIST}add/").status_code == 403


def test_cancel_action_calls_the_service_and_only_where_the_user_is_an_editor(
    project_a, project_b, make_job
):
    pending = make_job(status="pending")
    running = make_job(status="running", attempts=1, ago=0)
    finished = make_job(status="succeeded")
    foreign = make_job(status="pending", project=project_b)
    client = staff_client(project_a, "editor", "ed@acme.test")
    response = client.post(
        CHANGELIST,
        {
            "action": "cancel_jobs",
            "_selected_action": [pending.pk, running.pk, finished.pk, foreign.pk],
        },
        follow=True,
    )
    assert response.status_code == 200
    states = {job.pk: (job.status, job.cancel_requested) for job in Job.objects.all()}
    assert states[pending.pk] == ("cancelled", True)
    assert states[running.pk] == ("running", True)
    assert states[finished.pk] == ("succeeded", False)
    assert states[foreign.pk] == ("pending", False)
    text = response.content.decode()
    assert "Cancelled 1 job(s); asked 1 running job(s) to stop." in text
    assert "Skipped 1 finished job(s)" in text


def test_readers_get_no_cancel_action(project_a, make_job):
    job = make_job(status="pending")
    client = staff_client(project_a, "reader", "rd@acme.test")
    page = client.get(CHANGELIST)
    assert b"cancel_jobs" not in page.content
    client.post(CHANGELIST, {"action": "cancel_jobs", "_selected_action": [job.pk]})
    assert Job.objects.get(pk=job.pk).status == "pending"


def test_the_list_shows_progress_as_a_bar_duration_and_error(superuser_client, make_job):
    from datetime import timedelta

    from django.utils import timezone

    started = timezone.now() - timedelta(seconds=125)
    make_job(
        status="failed",
        progress_done=3,
        progress_total=8,
        started_at=started,
        finished_at=started + timedelta(seconds=95),
        error="the provider refused the key",
    )
    html = superuser_client.get(CHANGELIST).content.decode()
    assert '<progress class="eng-bar" max="8" value="3"></progress> 3 / 8' in html
    assert "1m 35s" in html and "the provider refused the key" in html


def test_retry_submits_failed_and_cancelled_jobs_again_for_editors_only(
    project_a, project_b, make_job
):
    failed = make_job("aging", status="failed", params={"note": "again"})
    cancelled = make_job("aging", status="cancelled")
    done = make_job("aging", status="succeeded")
    foreign = make_job("aging", status="failed", project=project_b)
    selected = [failed.pk, cancelled.pk, done.pk, foreign.pk]
    reader = staff_client(project_a, "reader", "rd@acme.test")
    reader.post(CHANGELIST, {"action": "retry_jobs", "_selected_action": selected})
    assert Job.objects.count() == 4
    editor = staff_client(project_a, "editor", "ed@acme.test")
    page = editor.post(
        CHANGELIST, {"action": "retry_jobs", "_selected_action": selected}, follow=True
    )
    fresh = Job.objects.filter(status="pending")
    assert sorted((job.kind, job.project_id, str(job.params)) for job in fresh) == [
        ("aging", project_a.pk, "{'note': 'again'}"),
        ("aging", project_a.pk, "{}"),
    ]
    assert "Skipped 1 job(s)" in page.content.decode()
