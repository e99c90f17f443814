"""Free JSON fields are capped in depth and size at the API, and rows nested too deeply for
Python's JSON decoder (stored before the cap) still open in the admin and the API."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from engramia_site.input_text import MAX_JSON_DEPTH


def nested(levels: int, leaf: Any = "x") -> Any:
    """{"a": {"a": ... leaf}} with `levels` objects."""
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.fixture
def ids(owner):
    from memory.services import learn_pattern
    from skills.services import register_skill

    return {
        "pattern": learn_pattern(project=owner.project, task="t", code="c", actor=None).pattern_id,
        "skill": register_skill(project=owner.project, name="tool", actor=owner.user).pk,
    }


# (method, path, body with DEEP where the nested value goes, the field's dotted path)
FREE_JSON = [
    ("POST", "/v1/learn", {"task": "t", "code": "c", "metadata": "DEEP"}, "metadata"),
    ("PATCH", "/v1/patterns/{pattern}", {"metadata": "DEEP"}, "metadata"),
    (
        "POST",
        "/v1/skills",
        {"name": "deep", "parameters": {"type": "object", "properties": "DEEP"}},
        "parameters.properties",
    ),
    (
        "POST",
        "/v1/sessions/s/items",
        {"items": [{"role": "user", "content": "DEEP"}]},
        "items.0.content",
    ),
]


def _fill(body: Any, value: Any) -> Any:
    return json.loads(json.dumps(body).replace('"DEEP"', json.dumps(value)))


@pytest.mark.parametrize(
    "method, template, body, field", FREE_JSON, ids=[f"{m} {p}" for m, p, _, _ in FREE_JSON]
)
def test_free_json_nested_too_deeply_is_a_400_naming_the_field(
    method, template, body, field, owner, ids
):
    path = template.format(**ids)
    response = owner.client().generic(
        method, path, json.dumps(_fill(body, nested(300))), content_type="application/json"
    )
    assert response.status_code == 400, response.content[:300]
    (error,) = response.json()["errors"]
    assert error["code"] == "too_deep" and error["attr"].startswith(field + ".a.a")
    assert str(MAX_JSON_DEPTH) in error["detail"]


def test_metadata_within_the_cap_is_accepted_and_larger_is_refused(owner):
    client = owner.client()
    levels = MAX_JSON_DEPTH - 1  # the body is one level, the metadata object the next
    accepted = client.post(
        "/v1/learn", {"task": "t", "code": "c", "metadata": nested(levels)}, format="json"
    )
    assert accepted.status_code == 201
    big = {"blob": "x" * (64 * 1024)}
    refused = client.post("/v1/learn", {"task": "t2", "code": "c", "metadata": big}, format="json")
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["attr"] == "metadata"


@pytest.fixture
def superuser_client(db: Any) -> Client:
    user = get_user_model().objects.create_superuser("root", "root@x.test", "pw-12345!")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def test_a_pattern_stored_nested_too_deeply_opens_in_the_admin_and_the_api(
    owner, ids, superuser_client
):
    from memory.models import Pattern

    # As accepted before the cap: deeper than Python's decoder manages under a deep stack.
    Pattern.objects.filter(pk=ids["pattern"]).update(metadata=nested(900))
    change = superuser_client.get(f"/admin/memory/pattern/{ids['pattern']}/change/")
    assert change.status_code == 200
    assert b"nested too deeply" in change.content
    assert superuser_client.get("/admin/memory/pattern/").status_code == 200
    shown = owner.client().get(f"/v1/patterns/{ids['pattern']}")
    assert shown.status_code == 200
    metadata = shown.json()["metadata"]
    for _ in range(MAX_JSON_DEPTH + 1):  # the cap's levels are kept, the next one is cut
        metadata = metadata["a"]
    assert "nested too deeply" in metadata


def test_a_job_stored_with_params_nested_too_deeply_opens_in_the_admin_and_the_api(
    owner, superuser_client
):
    from jobs.models import Job
    from jobs.services import submit_job

    job = submit_job(project=owner.project, kind="aging", params={}, actor=owner.user)
    Job.objects.filter(pk=job.pk).update(params={"metadata": nested(900)})
    assert superuser_client.get(f"/admin/jobs/job/{job.pk}/change/").status_code == 200
    assert owner.client().get(f"/v1/jobs/{job.pk}").status_code == 200
