"""Every ⧗ memory endpoint honours `Prefer: respond-async` and its job gives the sync answer."""

import pytest

from jobs.models import Job
from jobs.services import run_job_inline
from memory.models import Document, Pattern

ASYNC = {"HTTP_PREFER": "respond-async"}


def _finish(client, response):
    assert response.status_code == 202, response.content
    assert response["Preference-Applied"] == "respond-async"
    body = response.json()
    assert response["Location"] == body["url"] == f"/v1/jobs/{body['job_id']}"
    assert body["status"] == "pending"
    run_job_inline(Job.objects.get(pk=body["job_id"]))
    return client.get(body["url"]).json()


def test_learn_as_a_job(editor):
    client = editor.client()
    job = _finish(
        client, client.post("/v1/learn", {"task": "t", "code": "c"}, format="json", **ASYNC)
    )
    assert job["status"] == "succeeded" and job["kind"] == "learn"
    assert Pattern.objects.get(pk=job["result"]["pattern_id"]).task == "t"


def test_aging_and_documents_as_jobs(editor):
    client = editor.client()
    aging = _finish(client, client.post("/v1/aging", {}, format="json", **ASYNC))
    assert aging["result"] == {"decayed": 0, "archived": 0}
    document = _finish(
        client,
        client.post(
            "/v1/documents", {"name": "a.md", "text": "hello world"}, format="json", **ASYNC
        ),
    )
    assert Document.objects.get(pk=document["result"]["id"]).name == "a.md"


def test_bad_input_is_still_a_400_not_a_failed_job(editor):
    response = editor.client().post("/v1/learn", {"task": "t"}, format="json", **ASYNC)
    assert response.status_code == 400 and not Job.objects.exists()


@pytest.mark.parametrize(
    "header, expected",
    [
        ("respond-sync", 201),  # another preference: synchronous
        ("wait=abc, =", 201),  # malformed: ignored, synchronous
        ('"', 201),  # malformed: ignored, synchronous
        ("respond-async;;;", 202),  # empty parameters are tolerated
    ],
)
def test_other_or_malformed_prefer_headers(editor, header, expected):
    response = editor.client().post(
        "/v1/learn", {"task": f"t {header}", "code": "c"}, format="json", HTTP_PREFER=header
    )
    assert response.status_code == expected
    assert ("Preference-Applied" in response) == (expected == 202)
