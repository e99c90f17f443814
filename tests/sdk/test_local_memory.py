"""Memory in local mode: the services in-process, typed results and errors, audited as the SDK."""

from __future__ import annotations

import asyncio
import getpass
import itertools
import threading
import time

import pytest

from engramia import LearnResult, Match, Memory
from engramia.errors import (
    EngramiaConfigError,
    EngramiaJudgeNotConfiguredError,
    EngramiaNotFoundError,
    EngramiaValidationError,
)
from engramia.types import EvalResult, FeedbackItem
from memory.models import Evaluation, Pattern
from tenants.models import AuditEntry, Project, Tenant
from tests.sdk.conftest import verdict

SDK_LABEL = f"sdk:{getpass.getuser()}"

pytestmark = pytest.mark.django_db


def test_a_missing_tenant_and_project_are_created_and_audited():
    memory = Memory("newco/helpdesk")
    result = memory.learn("Reset a password", "send_reset_link(user)")
    project = Project.objects.get(tenant__slug="newco", slug="helpdesk")
    assert Pattern.objects.get(pk=result.pattern_id).project == project
    created = AuditEntry.objects.filter(action=AuditEntry.Action.CREATE)
    assert (
        created.get(content_type__model="tenant", object_pk=str(project.tenant_id)).actor_email
        == SDK_LABEL
    )
    assert (
        created.get(content_type__model="project", object_pk=str(project.pk)).actor_email
        == SDK_LABEL
    )
    assert Tenant.objects.filter(slug="newco").count() == 1


def test_learn_returns_a_typed_result_and_the_audit_log_names_the_sdk(project_a):
    memory = Memory("acme/support")
    result = memory.learn(
        "Parse a CSV file",
        "csv.reader(f)",
        eval_score=7,
        output="rows",
        run_id="run-1",
        metadata={"lang": "python"},
    )
    assert isinstance(result, LearnResult) and result.stored and result.duplicate_of is None
    pattern = Pattern.objects.get(pk=result.pattern_id)
    assert (pattern.project, pattern.source, pattern.run_id, pattern.output) == (
        project_a,
        "sdk",
        "run-1",
        "rows",
    )
    assert pattern.eval_score == 7 and pattern.metadata == {"lang": "python"}
    entry = AuditEntry.objects.get(content_type__model="pattern", object_pk=str(pattern.pk))
    assert entry.actor_email == SDK_LABEL and entry.project_id == project_a.pk


def test_engramia_actor_names_a_user_in_the_audit_log(project_a, owner, monkeypatch):
    monkeypatch.setenv("ENGRAMIA_ACTOR", owner.user.email)
    result = Memory("acme/support").learn("Rotate logs", "logrotate -f conf")
    entry = AuditEntry.objects.get(content_type__model="pattern", object_pk=str(result.pattern_id))
    assert entry.actor_id == owner.user.pk and entry.actor_email == owner.user.email


def test_an_unknown_engramia_actor_is_a_config_error(project_a, monkeypatch):
    monkeypatch.setenv("ENGRAMIA_ACTOR", "nobody@nowhere.test")
    with pytest.raises(EngramiaConfigError, match="names no Engramia user"):
        Memory("acme/support").learn("t", "c")


def test_duplicates_are_skipped_and_external_ids_are_idempotent(project_a):
    memory = Memory("acme/support")
    first = memory.learn("Parse a CSV file", "csv.reader(f)")
    again = memory.learn("parse a csv file!", "pandas.read_csv(f)")
    assert (again.stored, again.duplicate_of, again.pattern_id) == (
        False,
        first.pattern_id,
        first.pattern_id,
    )
    both = memory.learn("Parse a CSV file", "pandas.read_csv(f)", on_duplicate="keep_both")
    assert both.stored and both.pattern_id != first.pattern_id
    imported = memory.learn("Legacy", "x", external_id="msg-1", created_at="2024-01-02T03:04:05Z")
    repeated = memory.learn("Legacy", "x", external_id="msg-1")
    assert repeated.pattern_id == imported.pattern_id and not repeated.stored
    assert Pattern.objects.get(pk=imported.pattern_id).created_at.year == 2024


def test_recall_returns_typed_matches_best_first(project_a, project_b):
    memory = Memory("acme/support")
    csv_id = memory.learn("Parse a CSV file into rows", "csv.reader(f)", eval_score=9).pattern_id
    memory.learn("Send an email with SMTP", "smtplib.SMTP(host)")
    Memory("globex/research").learn("Parse a CSV file into rows", "their secret code")
    matches = memory.recall("parse csv file rows", limit=5)
    assert all(isinstance(match, Match) for match in matches)
    assert matches[0].pattern_id == csv_id and matches[0].code == "csv.reader(f)"
    assert matches[0].eval_score == 9 and matches[0].reuse_tier in ("duplicate", "adapt", "fresh")
    assert "their secret code" not in [match.code for match in matches]  # scoped to the project
    assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)
    assert memory.recall("parse csv file rows", limit=1, min_similarity=0.99) == []


def test_bad_input_raises_the_same_typed_errors_as_the_api(project_a):
    memory = Memory("acme/support")
    with pytest.raises(EngramiaValidationError) as caught:
        memory.learn("t", "c", eval_score=11)
    assert caught.value.status == 400 and caught.value.errors_for("eval_score")
    with pytest.raises(EngramiaValidationError) as caught:
        memory.learn("   ", "c")
    assert caught.value.errors[0]["attr"] == "task"
    with pytest.raises(EngramiaValidationError):
        memory.learn("t", "c", on_duplicate="overwrite")  # type: ignore[arg-type]
    with pytest.raises(EngramiaValidationError):
        memory.recall("t", limit=0)
    with pytest.raises(EngramiaValidationError):
        memory.record_outcome([1], score=-1)
    assert Pattern.objects.count() == 0


def test_delete_pattern_and_not_found(project_a):
    memory = Memory("acme/support")
    pattern_id = memory.learn("Temporary", "x").pattern_id
    memory.delete_pattern(pattern_id)
    assert not Pattern.objects.filter(pk=pattern_id).exists()
    with pytest.raises(EngramiaNotFoundError) as caught:
        memory.delete_pattern(pattern_id)
    assert caught.value.status == 404


def test_delete_pattern_of_another_project_is_not_found(project_a, project_b):
    theirs = Memory("globex/research").learn("Theirs", "x").pattern_id
    with pytest.raises(EngramiaNotFoundError):
        Memory("acme/support").delete_pattern(theirs)
    assert Pattern.objects.filter(pk=theirs).exists()


def test_record_outcome_credits_only_the_projects_patterns(project_a, project_b):
    memory = Memory("acme/support")
    mine = memory.learn("Mine", "x").pattern_id
    theirs = Memory("globex/research").learn("Theirs", "y").pattern_id
    assert memory.record_outcome([mine, theirs], 9.0, feedback="worked") == 1
    evaluation = Evaluation.objects.get(pattern_id=mine)
    assert (evaluation.evaluator, evaluation.score, evaluation.feedback) == (
        "agent_outcome",
        9.0,
        "worked",
    )
    assert not Evaluation.objects.filter(pattern_id=theirs).exists()


def test_evaluate_without_a_judge_is_a_typed_503(project_a):
    with pytest.raises(EngramiaJudgeNotConfiguredError) as caught:
        Memory("acme/support").evaluate("t", "c")
    assert caught.value.status == 503 and "ENGRAMIA_LLM" in str(caught.value)


def test_evaluate_with_the_judge_records_on_the_pattern(project_a, judge):
    judge.enqueue(verdict(6, "Handle quoting."), verdict(8, "Add tests."), verdict(9, "Stream."))
    memory = Memory("acme/support")
    pattern_id = memory.learn("Parse CSV", "split(',')").pattern_id
    result = memory.evaluate("Parse CSV", "split(',')", num_evals=3, pattern_id=pattern_id)
    assert isinstance(result, EvalResult)
    assert result.median_score == 8 and sorted(result.scores) == [6, 8, 9]
    assert result.feedback == "Add tests." and result.pattern_id == pattern_id
    assert Evaluation.objects.get(pattern_id=pattern_id).evaluator.startswith("llm:openai:")
    with pytest.raises(EngramiaValidationError) as caught:
        memory.evaluate("t", "c", pattern_id=pattern_id + 1000)
    assert caught.value.errors_for("pattern_id")
    feedback = memory.feedback()
    assert [(item.feedback, item.count) for item in feedback] == [("Add tests.", 1)]
    assert isinstance(feedback[0], FeedbackItem)


def test_read_path_follows_the_cutover(project_a):
    from tenants.services import set_read_path

    memory = Memory("acme/support")
    assert memory.read_path == "engramia"
    set_read_path(project=project_a, read_path="dual", reason="compare for a release", actor=None)
    assert memory.read_path == "dual"
    assert memory.project_info()["embedding_model"] == project_a.embedding_model


@pytest.mark.django_db(transaction=True)
def test_async_twins_run_off_the_event_loop(project_a):
    memory = Memory("acme/support")
    loop_thread: list[int] = []

    async def scenario():
        loop_thread.append(threading.get_ident())
        learned = await memory.alearn("Parse a CSV file", "csv.reader(f)")
        matches = await memory.arecall("Parse a CSV file")
        credited = await memory.arecord_outcome([learned.pattern_id], 8)
        feedback = await memory.afeedback()
        path = await memory.aread_path()
        with pytest.raises(EngramiaJudgeNotConfiguredError):
            await memory.aevaluate("t", "c")
        await memory.adelete_pattern(learned.pattern_id)
        return learned, matches, credited, feedback, path

    learned, matches, credited, feedback, path = asyncio.run(scenario())
    assert matches[0].pattern_id == learned.pattern_id and credited == 1
    assert feedback == [] and path == "engramia"
    assert not Pattern.objects.filter(pk=learned.pattern_id).exists()


@pytest.mark.django_db(transaction=True)
def test_a_sync_call_inside_a_running_loop_still_works(project_a):
    memory = Memory("acme/support")

    async def scenario():
        return memory.learn("Called from async code", "x")

    result = asyncio.run(scenario())
    assert Pattern.objects.filter(pk=result.pattern_id).exists()


@pytest.mark.django_db(transaction=True)
def test_async_calls_do_not_block_the_loop(project_a, monkeypatch):
    import memory.services.recall as recall_module

    real = recall_module.embedder_for

    class SlowEmbedder:
        def __init__(self, inner):
            self.inner, self.name = inner, inner.name

        def embed_query(self, text):
            time.sleep(0.3)
            return self.inner.embed_query(text)

    monkeypatch.setattr(recall_module, "embedder_for", lambda project: SlowEmbedder(real(project)))
    memory = Memory("acme/support")
    memory.learn("warm up", "x")
    ticks: list[float] = []

    async def heartbeat(stop):
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def scenario():
        stop = asyncio.Event()
        beat = asyncio.create_task(heartbeat(stop))
        await memory.arecall("a slow recall")
        stop.set()
        await beat

    asyncio.run(scenario())
    assert len(ticks) >= 10  # the loop kept ticking while the 0.3 s recall ran in a thread
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.25


@pytest.mark.django_db(transaction=True)
def test_back_to_back_calls_skip_the_connection_check_a_pause_or_an_error_brings_back(
    project_a, monkeypatch
):
    """Django's health check is a round trip (`SELECT 1`) before a call: right after a call on
    the same thread it is left out; after a pause or a database error it runs again."""
    from django.db import connections

    import engramia.local as local_mode

    connection = connections["default"]
    checks: list[bool] = []
    is_usable = type(connection).is_usable

    def counted(self):
        checks.append(True)
        return is_usable(self)

    monkeypatch.setattr(type(connection), "is_usable", counted)
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)  # persistent, as deployed
    connection.close()
    memory = Memory("acme/support")
    memory.learn("Parse a CSV file", "csv.reader(f)")
    checks.clear()
    assert memory.recall("parse a csv file")[0].task == "Parse a CSV file"
    memory.recall("parse a csv file")
    assert checks == []
    monkeypatch.setattr(local_mode, "RECHECK_CONNECTIONS_AFTER_SECONDS", 0.0)  # a pause
    memory.recall("parse a csv file")
    assert len(checks) == 1
    monkeypatch.setattr(local_mode, "RECHECK_CONNECTIONS_AFTER_SECONDS", 60.0)
    connection.errors_occurred = True  # what Django records when a statement failed
    memory.recall("parse a csv file")
    assert len(checks) == 2
    connection.set_autocommit(False)  # left changed by someone: Django closes such a connection
    memory.recall("parse a csv file")
    assert connection.get_autocommit() is True
