"""API keys' rows kept by the process for a moment: one round trip fewer per request, with the
secret still checked every time and changes made here seen at once."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from tenants import keyscope
from tenants.choices import Role
from tenants.models import ApiKey
from tenants.services import revoke_api_key, set_membership


def _key_reads(queries: CaptureQueriesContext) -> int:
    return sum(1 for query in queries.captured_queries if "k.prefix" in query["sql"])


def _get(secret: str, path: str = "/v1/project") -> Any:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client.get(path)


def test_back_to_back_requests_read_the_key_once(reader):
    # The first use is recorded, and the row read again afterwards (at most once a minute).
    assert _get(reader.secret).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        for _ in range(4):
            assert _get(reader.secret).status_code == 200
    assert _key_reads(queries) == 1


def test_a_wrong_secret_with_a_kept_prefix_is_still_refused(reader):
    forged = reader.secret[:-4] + ("AAAA" if not reader.secret.endswith("AAAA") else "BBBB")
    assert _get(forged).status_code == 401
    assert not keyscope._kept  # a wrong secret's row is not kept
    assert _get(reader.secret).status_code == 200
    assert _get(forged).status_code == 401  # nor accepted from a kept row
    assert _get(reader.secret).status_code == 200


def test_rows_for_projects_a_key_does_not_act_on_are_not_kept(reader):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {reader.secret}")
    for name in ("nope-1", "nope-2", "nope-3"):
        client.get("/v1/project", HTTP_X_ENGRAMIA_PROJECT=name)
    assert not [entry for entry in keyscope._kept if entry[1].startswith("nope")]


def test_unknown_prefixes_are_not_kept(db):
    with CaptureQueriesContext(connection) as queries:
        for _ in range(2):
            assert _get("eng_000000000000_nothing").status_code == 401
    assert _key_reads(queries) == 2
    assert not keyscope._kept


def test_a_revoked_key_is_refused_at_once(owner, reader):
    assert _get(reader.secret).status_code == 200
    revoke_api_key(reader.key, actor=owner.user)
    assert _get(reader.secret).status_code == 401


def test_a_lowered_role_applies_at_once(owner, editor):
    client = editor.client()
    assert client.post("/v1/learn", {"task": "t", "code": "c"}, format="json").status_code == 201
    # set_membership grants through bulk_create, which sends no post_save.
    set_membership(user=editor.user, scope=editor.project, role=Role.READER, actor=owner.user)
    assert client.post("/v1/learn", {"task": "u", "code": "c"}, format="json").status_code == 403


def test_a_first_role_applies_at_once(owner, project_a):
    from tenants.roles import revoke_roles
    from tests.conftest import make_persona

    newcomer = make_persona("newcomer@acme.test", project_a, "reader")
    revoke_roles(newcomer.user, project_a)  # no role left: the key acts on nothing
    for _ in range(2):  # the first records the key's use and reads its row again
        assert _get(newcomer.secret).status_code in (403, 404)
    assert keyscope._kept
    # Granted with bulk_create and, with no role to replace, no row deleted: no signal at all.
    set_membership(user=newcomer.user, scope=project_a, role=Role.READER, actor=owner.user)
    assert _get(newcomer.secret).status_code == 200


def test_a_change_made_elsewhere_applies_when_the_kept_row_expires(reader):
    for _ in range(2):  # the first records the key's use and reads its row again
        assert _get(reader.secret).status_code == 200
    # Another process revokes the key: nothing in this one hears of it.
    ApiKey.objects.filter(pk=reader.key.pk).update(revoked_at=timezone.now())
    assert _get(reader.secret).status_code == 200
    for entry in list(keyscope._kept):
        expires, row = keyscope._kept[entry]
        keyscope._kept[entry] = (expires - 60, row)
    assert _get(reader.secret).status_code == 401


def test_zero_seconds_reads_the_key_for_every_request(reader, settings):
    settings.API_KEY_CACHE_SECONDS = 0
    with CaptureQueriesContext(connection) as queries:
        for _ in range(2):
            assert _get(reader.secret).status_code == 200
    assert _key_reads(queries) == 2


def test_requests_get_their_own_model_instances(reader):
    first = keyscope.load_key_scope(reader.key.prefix, "")
    second = keyscope.load_key_scope(reader.key.prefix, "")
    assert first is not None and second is not None
    assert first.key is not second.key and first.key.user is not second.key.user
    assert first.key.pk == second.key.pk
