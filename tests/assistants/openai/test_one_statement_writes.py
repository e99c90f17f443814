"""A streamed run's rows written in one statement each: what save() writes, audit included."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assistants.models import Message, Run, RunStep
from assistants.openai.services import runs, steps
from jobs.models import Job
from tenants.models import AuditEntry
from tests.assistants.openai.conftest import new_assistant, new_thread, read_events
from tests.fakes.llm_servers import Reply

# Values that differ between two runs however they are stored.
VARYING = {
    "id",
    "public_id",
    "run",
    "thread",
    "job",
    "created_at",
    "completed_at",
    "message_id",
    "request_id",
    "incomplete_at",
    "expires_at",
    "started_at",
    "assistant",
    "run_ref",
    "assistant_ref",
}


def streamed(api: Any, llm: Any, text: str = "Hello there.", **fields: Any) -> Run:
    assistant = new_assistant(api)
    thread = new_thread(api, "hi")
    llm.enqueue(Reply(text=text, **fields))
    body = {"assistant_id": assistant["id"], "stream": True}
    events = read_events(api("post", f"/threads/{thread['id']}/runs", body))
    assert events[-2][0] in ("thread.run.completed", "thread.run.incomplete"), events[-3:]
    return Run.objects.get(public_id=events[-2][1]["id"])


def row_by_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make complete_answer take the locked ORM path (auditlog's signals write the entries)."""
    monkeypatch.setattr(steps, "_answered", lambda *args, **kwargs: None)


def audit_of(run: Run) -> list[tuple[str, int, dict[str, Any], dict[str, Any], str]]:
    """The entries of the rows the answer wrote, in a comparable form."""
    message = Message.objects.get(run=run, role="assistant")
    step = RunStep.objects.get(run=run)
    rows = [(Message, message.pk), (RunStep, step.pk), (Job, run.job_id)]
    found = []
    for model, pk in rows:
        entries = AuditEntry.objects.filter(
            content_type__model=model._meta.model_name, object_id=pk
        )
        for entry in entries:
            found.append(_comparable(model.__name__, entry, pk))
    for entry in AuditEntry.objects.filter(
        content_type__model="run",
        object_id=run.pk,
        action=AuditEntry.Action.UPDATE,
        changes__has_key="completed_at",
    ):
        found.append(_comparable("Run", entry, run.pk))
    return sorted(found, key=lambda item: (item[0], item[1]))


def _comparable(kind: str, entry: AuditEntry, pk: int) -> Any:
    assert entry.object_pk == str(pk)
    changes = {
        name: ("<varies>" if name in VARYING else value) for name, value in entry.changes.items()
    }
    data = {name: value for name, value in (entry.additional_data or {}).items()}
    named = re.sub(r"\b(msg|step|run|asst)_\w+", "<id>", entry.object_repr)
    stamped = (
        entry.content_type_id,
        entry.actor_id,
        entry.actor_email,
        entry.api_key_name,
        entry.remote_addr,
        entry.tenant_id,
        entry.project_id,
    )
    return (kind, entry.action, changes, data, named.replace(str(pk), "<pk>"), stamped)


def streamed_queries(api: Any, llm: Any) -> list[dict[str, str]]:
    """The SQL of one streamed run on a new thread, from its POST to the end of its stream."""
    assistant = new_assistant(api)
    thread = new_thread(api, "hi")
    llm.enqueue(Reply(text="Hello there."))
    body = {"assistant_id": assistant["id"], "stream": True}
    with CaptureQueriesContext(connection) as queries:
        read_events(api("post", f"/threads/{thread['id']}/runs", body))
    return list(queries.captured_queries)


def test_a_streamed_run_and_its_answer_are_stored_in_one_statement_each(api, llm):
    queries = streamed_queries(api, llm)
    writes = [q["sql"] for q in queries if "INSERT INTO assistants_message" in q["sql"]]
    assert len(writes) == 1
    assert "INSERT INTO assistants_runstep" in writes[0]
    assert "UPDATE assistants_run" in writes[0]
    created = [q["sql"] for q in queries if q["sql"].startswith('INSERT INTO "assistants_run"')]
    assert created == []  # the run and its audit entry went in one statement too
    assert not any('INSERT INTO "tenants_auditentry"' in q["sql"] for q in queries)


def test_the_statement_writes_the_rows_and_audit_entries_the_orm_path_writes(api, llm, monkeypatch):
    fast = streamed(api, llm)
    row_by_row(monkeypatch)
    slow = streamed(api, llm)
    for run in (fast, slow):
        assert run.status == "completed" and run.completed_at is not None
        assert run.required_action is None and run.incomplete_details is None
        assert run.usage["total_tokens"] > 0
        job = Job.objects.get(pk=run.job_id)
        assert (job.kind, job.params, job.status) == ("assistants_run", {"run": run.pk}, "pending")
        message = Message.objects.get(run=run, role="assistant")
        assert (message.status, message.text()) == ("completed", "Hello there.")
        step = RunStep.objects.get(run=run)
        assert (step.status, step.completed_at is not None) == ("completed", True)
        assert step.step_details["message_creation"]["message_id"] == message.public_id
    assert audit_of(fast) == audit_of(slow)
    kinds = [(kind, action) for kind, action, *_ in audit_of(fast)]
    assert kinds == [
        ("Job", AuditEntry.Action.CREATE),
        ("Message", AuditEntry.Action.CREATE),
        ("Run", AuditEntry.Action.UPDATE),
        ("RunStep", AuditEntry.Action.CREATE),
    ]
    entry = AuditEntry.objects.get(
        content_type__model="run", object_id=fast.pk, action=1, changes__has_key="completed_at"
    )
    assert entry.changes["job"] == ["None", str(fast.job_id)]
    assert entry.changes["status"] == ["in_progress", "completed"]
    assert entry.api_key_name and entry.cid  # the request's key and id, as a save() stamps


def test_an_answer_cut_short_ends_the_run_incomplete_without_a_learning_job(api, llm, monkeypatch):
    fast = streamed(api, llm, text="Hello there.", finish="length")
    row_by_row(monkeypatch)
    slow = streamed(api, llm, text="Hello there.", finish="length")
    for run in (fast, slow):
        assert run.status == "incomplete" and run.job_id is None
        assert run.incomplete_details == {"reason": "max_completion_tokens"}
        message = Message.objects.get(run=run, role="assistant")
        assert message.incomplete_details == {"reason": "max_tokens"}
    assert audit_of(fast) == audit_of(slow)


def test_a_run_no_longer_in_progress_is_left_to_the_locked_path(api, llm, monkeypatch):
    """Cancellation asked for while the model answered: the statement writes nothing."""
    stored: list[bool] = []
    original = steps.store_answer

    def cancel_first(**kwargs: Any) -> bool:
        Run.objects.filter(pk=kwargs["run"].pk).update(status="cancelling")
        stored.append(original(**kwargs))
        return stored[-1]

    monkeypatch.setattr(steps, "store_answer", cancel_first)
    run = streamed_cancelled(api, llm)
    assert stored == [False]
    assert run.status == "cancelled" and run.job_id is None
    message = Message.objects.get(run=run, role="assistant")
    assert message.incomplete_details == {"reason": "run_cancelled"}
    assert message.completed_at is None and message.incomplete_at is not None
    assert Message.objects.filter(run=run).count() == 1
    step = RunStep.objects.get(run=run)
    assert step.status == "cancelled" and step.cancelled_at is not None
    assert step.completed_at is None and step.usage is None  # nothing of the first attempt


def streamed_cancelled(api: Any, llm: Any) -> Run:
    assistant = new_assistant(api)
    thread = new_thread(api, "hi")
    llm.enqueue(Reply(text="Hello there."))
    body = {"assistant_id": assistant["id"], "stream": True}
    events = read_events(api("post", f"/threads/{thread['id']}/runs", body))
    assert events[-2][0] == "thread.run.cancelled", events[-3:]
    return Run.objects.get(public_id=events[-2][1]["id"])


def test_a_streamed_run_is_created_with_its_audit_entry_as_save_would(api, llm, monkeypatch):
    fast = streamed(api, llm)
    monkeypatch.setattr(runs, "insert_audited", lambda run: run.save())
    slow = streamed(api, llm)

    def created(run: Run) -> Any:
        entry = AuditEntry.objects.get(
            content_type__model="run", object_id=run.pk, action=AuditEntry.Action.CREATE
        )
        assert entry.api_key_name and entry.cid
        return _comparable("Run", entry, run.pk)

    assert created(fast) == created(slow)
    assert created(fast)[2]["status"] == ["None", "in_progress"]


def test_the_run_statements_are_split_at_their_placeholders_once_per_process(api, llm, monkeypatch):
    from psycopg import _queries

    streamed(api, llm)  # the statements' shapes are in psycopg's cache from here on
    uncached: list[bytes] = []

    def counting(split: Any) -> Any:
        def counted(query: bytes, *args: Any) -> Any:
            uncached.append(query)
            return split(query, *args)

        return counted

    # Bound client-side (most) or server-side (the prepared ones: tenants.statements).
    for name in ("_query2pg_client_nocache", "_query2pg_nocache"):
        monkeypatch.setattr(_queries, name, counting(getattr(_queries, name)))
    assert streamed(api, llm).status == "completed"
    assert [query[:60] for query in uncached if b"assistants_" in query] == []


def _prepared_run_statements() -> list[tuple[str, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE %s OR statement LIKE %s",
            ["WITH inserted AS (INSERT INTO assistants_run%", "WITH target AS%"],
        )
        return cursor.fetchall()


def test_the_run_statements_are_prepared_once_per_connection(api, llm):
    streamed(api, llm)
    streamed(api, llm)
    found = _prepared_run_statements()
    assert len(found) == 2, found  # the run's row, and its answer: planned once, run twice
    assert all(runs == 2 for _, runs in found), found
    # Django's own queries are left alone: psycopg keeps no account of them.
    assert connection.connection.prepare_threshold is None


def test_prepared_statements_can_be_turned_off(api, llm, settings):
    settings.DB_PREPARED_STATEMENTS = False  # ENGRAMIA_DB_PREPARED_STATEMENTS=0
    assert streamed(api, llm).status == "completed"
    assert _prepared_run_statements() == []
