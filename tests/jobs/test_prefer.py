"""`Prefer: respond-async` (RFC 7240): parsing, and 202-or-synchronous through a real endpoint."""

from __future__ import annotations

import pytest
from rest_framework.test import APIRequestFactory

from jobs.api.async_support import (
    MalformedPreferHeader,
    accepted,
    parse_prefer,
    prefers_async,
)
from jobs.models import Job


@pytest.mark.parametrize(
    "header",
    [
        "respond-async",
        "RESPOND-ASYNC",
        "Respond-Async",
        "respond-async, wait=10",
        "wait=10, respond-async",
        "wait=10,respond-async",
        "  respond-async  ",
        "respond-async; foo=bar",
        'respond-async; note="a, b; c"',
        "return=minimal, respond-async; x",
        ",, respond-async ,",
        "respond-async=",
        'handling=lenient, foo="quoted, with comma", respond-async',
    ],
)
def test_respond_async_is_recognised_among_other_preferences(header):
    assert "respond-async" in parse_prefer(header)
    assert prefers_async(APIRequestFactory().post("/", HTTP_PREFER=header))


@pytest.mark.parametrize(
    "header",
    [
        "",
        "wait=10",
        "return=representation",
        "respond-asynchronously",
        "respond",
        "async",
        'foo="respond-async"',
        "x; respond-async",
        "no-respond-async",
    ],
)
def test_other_preferences_mean_synchronous(header):
    assert not prefers_async(APIRequestFactory().post("/", HTTP_PREFER=header))


@pytest.mark.parametrize(
    "header",
    [
        'respond-async, foo="unterminated',
        "respond async",
        "=respond-async",
        "respond-async, wait=1 0",
        "respond-async; =x",
        'respond-async, wait="a"b',
        "résumé, respond-async",
        "respond-async, {}",
        'respond-async, wait="x\\',
    ],
)
def test_malformed_headers_are_rejected_by_the_parser_and_ignored_by_prefers_async(header):
    with pytest.raises(MalformedPreferHeader):
        parse_prefer(header)
    assert prefers_async(APIRequestFactory().post("/", HTTP_PREFER=header)) is False


def test_values_are_unquoted_and_the_first_occurrence_wins():
    assert parse_prefer('Wait=10, wait=20, note="say \\"hi\\"", empty=""') == {
        "wait": "10",
        "note": 'say "hi"',
        "empty": None,
    }


def test_accepted_points_at_the_job(make_job):
    job = make_job()
    response = accepted(job)
    assert response.status_code == 202
    assert response["Location"] == f"/v1/jobs/{job.pk}"
    assert response["Preference-Applied"] == "respond-async"
    assert response.data == {"job_id": job.pk, "status": "pending", "url": f"/v1/jobs/{job.pk}"}


@pytest.mark.urls("tests.jobs.urls")
def test_prefer_respond_async_answers_202_with_a_pending_job(editor):
    response = editor.client().post(
        "/v1/test-echo", {"hello": "world"}, format="json", HTTP_PREFER="respond-async, wait=5"
    )
    assert response.status_code == 202
    body = response.json()
    job = Job.objects.get(pk=body["job_id"])
    assert body == {"job_id": job.pk, "status": "pending", "url": f"/v1/jobs/{job.pk}"}
    assert response["Location"] == f"/v1/jobs/{job.pk}"
    assert response["Preference-Applied"] == "respond-async"
    assert "Prefer" in response["Vary"]
    assert (job.kind, job.params, job.project) == ("test.echo", {"hello": "world"}, editor.project)
    assert job.actor == editor.user and job.api_key_name == editor.key.name
    assert editor.client().get(body["url"]).json()["status"] == "pending"


@pytest.mark.urls("tests.jobs.urls")
@pytest.mark.parametrize(
    "header",
    ['respond-async, foo="unterminated', "respond async", "=", ";;;", "\x7f", "wait=10"],
)
def test_malformed_or_other_prefer_headers_get_the_synchronous_answer(editor, header):
    response = editor.client().post(
        "/v1/test-echo", {"hello": "world"}, format="json", HTTP_PREFER=header
    )
    assert response.status_code == 200
    assert response.json() == {"echo": {"hello": "world"}, "sync": True}
    assert "Preference-Applied" not in response
    assert not Job.objects.exists()


@pytest.mark.urls("tests.jobs.urls")
def test_async_submission_still_needs_the_endpoint_role(reader):
    response = reader.client().post(
        "/v1/test-echo", {"hello": "world"}, format="json", HTTP_PREFER="respond-async"
    )
    assert response.status_code == 403
    assert not Job.objects.exists()
