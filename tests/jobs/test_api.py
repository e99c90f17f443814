"""GET /v1/jobs, GET /v1/jobs/<id>, POST /v1/jobs/<id>/cancel: shape, filters, scope and roles."""

from __future__ import annotations

from django.utils import timezone

from jobs.models import Job

JOB_FIELDS = {
    "id",
    "kind",
    "status",
    "progress",
    "result",
    "error",
    "attempts",
    "created_at",
    "started_at",
    "finished_at",
}


def test_job_detail_has_the_contract_shape(reader, make_job):
    job = make_job(
        "test.echo",
        status="succeeded",
        progress_done=3,
        progress_total=3,
        attempts=1,
        result={"answer": 42},
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    body = reader.client().get(f"/v1/jobs/{job.pk}").json()
    assert set(body) == JOB_FIELDS
    assert body["id"] == job.pk and body["kind"] == "test.echo" and body["status"] == "succeeded"
    assert body["progress"] == {"done": 3, "total": 3}
    assert body["result"] == {"answer": 42} and body["error"] is None
    assert body["started_at"] and body["finished_at"] and body["created_at"]


def test_a_failed_job_shows_its_error_and_no_result(reader, make_job):
    job = make_job(status="failed", error="ValueError: boom")
    body = reader.client().get(f"/v1/jobs/{job.pk}").json()
    assert body["error"] == "ValueError: boom" and body["result"] is None
    assert body["progress"] == {"done": 0, "total": None}


def test_list_is_paginated_newest_first_and_filters_by_status_and_kind(reader, make_job):
    older = make_job("test.echo", status="succeeded")
    middle = make_job("test.slow", status="running")
    newest = make_job("test.echo", status="pending")
    client = reader.client()
    everything = client.get("/v1/jobs").json()
    assert set(everything) == {"count", "next", "previous", "results"}
    assert [row["id"] for row in everything["results"]] == [newest.pk, middle.pk, older.pk]
    assert [
        row["id"] for row in client.get("/v1/jobs", {"status": "running"}).json()["results"]
    ] == [middle.pk]
    assert [
        row["id"] for row in client.get("/v1/jobs", {"kind": "test.echo"}).json()["results"]
    ] == [newest.pk, older.pk]
    both = client.get("/v1/jobs", {"kind": "test.echo", "status": "succeeded"}).json()
    assert [row["id"] for row in both["results"]] == [older.pk]
    page = client.get("/v1/jobs", {"page_size": 2}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]


def test_unknown_status_filter_is_a_400(reader):
    response = reader.client().get("/v1/jobs", {"status": "exploded"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "status"


def test_list_costs_a_fixed_number_of_queries(reader, make_job, django_assert_max_num_queries):
    client = reader.client()
    make_job()
    with django_assert_max_num_queries(20) as few:
        client.get("/v1/jobs")
    for _ in range(10):
        make_job()
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/v1/jobs").json()["count"] == 11


def test_outsider_can_neither_see_nor_cancel_another_tenants_job(outsider, make_job):
    job = make_job("test.slow", status="pending")
    client = outsider.client()
    assert client.get(f"/v1/jobs/{job.pk}").status_code == 404
    assert client.post(f"/v1/jobs/{job.pk}/cancel").status_code == 404
    assert client.get("/v1/jobs").json()["count"] == 0
    job.refresh_from_db()
    assert job.status == "pending" and not job.cancel_requested


def test_outsider_jobs_stay_out_of_my_list(reader, outsider, make_job):
    mine = make_job()
    make_job(project=outsider.project)
    assert [row["id"] for row in reader.client().get("/v1/jobs").json()["results"]] == [mine.pk]


def test_reader_cannot_cancel(reader, make_job):
    job = make_job(status="pending")
    response = reader.client().post(f"/v1/jobs/{job.pk}/cancel")
    assert response.status_code == 403
    job.refresh_from_db()
    assert job.status == "pending"


def test_editor_cancels_a_pending_job_at_once(editor, make_job):
    job = make_job(status="pending")
    response = editor.client().post(f"/v1/jobs/{job.pk}/cancel")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "cancelled" and body["finished_at"]
    job.refresh_from_db()
    assert job.status == "cancelled" and job.cancel_requested


def test_cancelling_a_running_job_asks_it_to_stop(editor, make_job):
    job = make_job(status="running", ago=0, attempts=1)
    body = editor.client().post(f"/v1/jobs/{job.pk}/cancel").json()
    assert body["status"] == "running"
    job.refresh_from_db()
    assert job.cancel_requested and job.status == "running"


def test_cancel_is_idempotent_but_a_finished_job_is_a_409(editor, make_job):
    cancelled = make_job(status="cancelled")
    assert editor.client().post(f"/v1/jobs/{cancelled.pk}/cancel").status_code == 200
    done = make_job(status="succeeded")
    response = editor.client().post(f"/v1/jobs/{done.pk}/cancel")
    assert response.status_code == 409
    assert "succeeded" in response.json()["errors"][0]["detail"]
    assert Job.objects.get(pk=done.pk).status == "succeeded"


def test_missing_or_malformed_job_ids_are_404(reader):
    assert reader.client().get("/v1/jobs/999999").status_code == 404
    assert reader.client().get("/v1/jobs/abc").status_code == 404
