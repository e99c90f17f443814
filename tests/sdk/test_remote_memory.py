"""Memory in remote mode: the REST API over httpx against a live test server; typed errors."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from engramia import LearnResult, Match, Memory
from engramia.errors import (
    EngramiaAuthenticationError,
    EngramiaConnectionError,
    EngramiaJudgeNotConfiguredError,
    EngramiaNotFoundError,
    EngramiaPermissionError,
    EngramiaRateLimitError,
    EngramiaServiceUnavailableError,
    EngramiaTimeoutError,
    EngramiaValidationError,
)
from engramia.types import EvalResult
from memory.models import Evaluation, Pattern
from tenants.models import AuditEntry
from tests.sdk.conftest import verdict
from tests.sdk.fake_api import Answer, FakeEngramiaAPI

RECALL_OK = {
    "matches": [
        {
            "pattern_id": 7,
            "task": "t",
            "code": "c",
            "output": "",
            "similarity": 0.9,
            "eval_score": None,
            "score": 0.9,
            "reuse_tier": "adapt",
            "source": "api",
            "run_id": "",
            "created_at": "2026-01-01T00:00:00Z",
        }
    ]
}
JUDGE_MISSING = {
    "type": "server_error",
    "errors": [
        {
            "code": "service_unavailable",
            "attr": None,
            "detail": "No LLM judge is configured: ... (set ENGRAMIA_LLM and its API key).",
        }
    ],
}


@pytest.fixture
def remote(live_server):
    """Memory(api_url=<live server>, api_key=<persona's key>), closed after the test: a kept-alive
    HTTP connection holds a live-server thread and its database connection open."""
    opened: list[Memory] = []

    def connect(persona, api_key: str | None = None) -> Memory:
        memory = Memory(api_url=live_server.url, api_key=api_key or persona.secret)
        opened.append(memory)
        return memory

    yield connect
    for memory in opened:
        memory.close()


@pytest.mark.django_db(transaction=True)
def test_learn_recall_outcome_feedback_and_delete_over_the_api(remote, owner, judge):
    judge.enqueue(verdict(6, "Handle quoting."))
    memory = remote(owner)
    learned = memory.learn("Parse a CSV file", "csv.reader(f)", eval_score=7, run_id="r1")
    assert isinstance(learned, LearnResult) and learned.stored and learned.pattern_count == 1
    again = memory.learn("parse a csv file", "other")
    assert (again.stored, again.duplicate_of) == (False, learned.pattern_id)
    pattern = Pattern.objects.get(pk=learned.pattern_id)
    assert pattern.project == owner.project and pattern.source == "sdk"
    entry = AuditEntry.objects.get(content_type__model="pattern", object_pk=str(pattern.pk))
    assert entry.actor_id == owner.user.pk  # remote mode acts as the key's user

    matches = memory.recall("parse csv", limit=3)
    assert isinstance(matches[0], Match) and matches[0].pattern_id == learned.pattern_id
    assert matches[0].created_at is not None and matches[0].eval_score == 7

    result = memory.evaluate(
        "Parse a CSV file", "csv.reader(f)", num_evals=1, pattern_id=learned.pattern_id
    )
    assert isinstance(result, EvalResult) and result.median_score == 6
    assert result.pattern_id == learned.pattern_id
    assert memory.record_outcome([learned.pattern_id], 9, feedback="shipped") == 1
    kinds = sorted(Evaluation.objects.filter(pattern=pattern).values_list("evaluator", flat=True))
    assert kinds[0] == "agent_outcome" and kinds[1] == "api" and kinds[2].startswith("llm:")
    assert {item.feedback for item in memory.feedback()} == {"shipped", "Handle quoting."}
    assert memory.read_path == "engramia"

    memory.delete_pattern(learned.pattern_id)
    assert not Pattern.objects.filter(pk=learned.pattern_id).exists()
    with pytest.raises(EngramiaNotFoundError) as caught:
        memory.delete_pattern(learned.pattern_id)
    assert caught.value.status == 404


@pytest.mark.django_db(transaction=True)
def test_async_twins_over_the_api(remote, editor):
    memory = remote(editor)

    async def scenario():
        learned = await memory.alearn("Send an email", "smtplib.SMTP(host)")
        matches = await memory.arecall("send email")
        credited = await memory.arecord_outcome([learned.pattern_id], 8)
        path = await memory.aread_path()
        feedback = await memory.afeedback()
        with pytest.raises(EngramiaJudgeNotConfiguredError):
            await memory.aevaluate("t", "c")
        with pytest.raises(EngramiaPermissionError):  # deleting needs admin; the key is editor
            await memory.adelete_pattern(learned.pattern_id)
        await memory.aclose()
        return learned, matches, credited, path, feedback

    learned, matches, credited, path, feedback = asyncio.run(scenario())
    assert matches[0].pattern_id == learned.pattern_id and credited == 1
    assert path == "engramia" and feedback == []


@pytest.mark.django_db(transaction=True)
def test_a_bad_key_is_a_typed_401(remote, editor):
    with pytest.raises(EngramiaAuthenticationError) as caught:
        remote(editor, api_key=editor.secret + "x").recall("anything")
    assert caught.value.status == 401 and caught.value.type == "client_error"


@pytest.mark.django_db(transaction=True)
def test_bad_input_is_a_typed_400_naming_the_field(remote, editor):
    with pytest.raises(EngramiaValidationError) as caught:
        remote(editor).learn("Parse CSV", "x", eval_score=11)
    error = caught.value
    assert error.status == 400 and error.type == "validation_error"
    assert error.errors_for("eval_score") and "eval_score" in str(error)
    assert not Pattern.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_reader_key_cannot_learn_403(remote, reader):
    with pytest.raises(EngramiaPermissionError) as caught:
        remote(reader).learn("t", "c")
    assert caught.value.status == 403


@pytest.mark.django_db(transaction=True)
def test_another_tenants_pattern_is_not_found(remote, owner, outsider):
    theirs = remote(outsider).learn("Their secret", "x").pattern_id
    with pytest.raises(EngramiaNotFoundError):
        remote(owner).delete_pattern(theirs)
    assert Pattern.objects.filter(pk=theirs).exists()


# -- retries, timeouts and transport errors (a scripted fake of the API on 127.0.0.1) -------


def test_429_is_retried_after_the_servers_retry_after():
    with FakeEngramiaAPI(
        Answer(429, {"type": "client_error", "errors": []}, {"Retry-After": "0.3"}),
        Answer(200, RECALL_OK),
    ) as api:
        matches = Memory(api_url=api.url, api_key="eng_a_b").recall("t")
    assert [m.pattern_id for m in matches] == [7]
    assert len(api.requests) == 2 and api.requests[1].at - api.requests[0].at >= 0.3
    assert api.requests[0].headers["authorization"] == "Bearer eng_a_b"


def test_503_is_retried_with_backoff_then_reported():
    down = Answer(
        503,
        {
            "type": "server_error",
            "errors": [
                {
                    "code": "service_unavailable",
                    "detail": "The database is unavailable.",
                    "attr": None,
                }
            ],
        },
    )
    with FakeEngramiaAPI(default=down) as api:
        memory = Memory(api_url=api.url, api_key="eng_a_b", max_retries=2, max_retry_wait=0.05)
        with pytest.raises(EngramiaServiceUnavailableError, match="database is unavailable"):
            memory.recall("t")
    assert len(api.requests) == 3  # the first try and two bounded retries


def test_a_retry_after_beyond_the_bound_is_reported_at_once():
    with (
        FakeEngramiaAPI(
            Answer(429, {"type": "client_error", "errors": []}, {"Retry-After": "120"})
        ) as api,
        pytest.raises(EngramiaRateLimitError) as caught,
    ):
        Memory(api_url=api.url, api_key="eng_a_b").learn("t", "c")
    assert caught.value.retry_after == 120 and len(api.requests) == 1


def test_a_missing_judge_is_not_retried():
    with (
        FakeEngramiaAPI(default=Answer(503, JUDGE_MISSING)) as api,
        pytest.raises(EngramiaJudgeNotConfiguredError),
    ):
        Memory(api_url=api.url, api_key="eng_a_b").evaluate("t", "c")
    assert len(api.requests) == 1


def test_async_retry_honours_retry_after():
    async def scenario(url):
        memory = Memory(api_url=url, api_key="eng_a_b")
        try:
            return await memory.arecall("t")
        finally:
            await memory.aclose()

    with FakeEngramiaAPI(Answer(429, None, {"Retry-After": "0.2"}), Answer(200, RECALL_OK)) as api:
        matches = asyncio.run(scenario(api.url))
    assert matches[0].pattern_id == 7 and api.requests[1].at - api.requests[0].at >= 0.2


def test_a_slow_server_is_a_timeout():
    with FakeEngramiaAPI(Answer(200, RECALL_OK, delay=1.0)) as api:
        started = time.monotonic()
        with pytest.raises(EngramiaTimeoutError):
            Memory(api_url=api.url, api_key="eng_a_b", timeout=0.2).recall("t")
    assert time.monotonic() - started < 1.0


def test_an_unreachable_server_is_a_connection_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    memory = Memory(
        api_url=f"http://127.0.0.1:{port}", api_key="eng_a_b", max_retries=1, max_retry_wait=0.01
    )
    with pytest.raises(EngramiaConnectionError, match="cannot reach"):
        memory.recall("t")


@pytest.mark.django_db(transaction=True)
def test_local_and_remote_mode_report_bad_input_alike(remote, editor):
    reported = []
    for memory in (remote(editor), Memory("acme/support")):
        for call in (
            lambda m: m.learn("t", "c", eval_score=11),
            lambda m: m.learn("   ", "c"),
            lambda m: m.recall("t", limit=51),
        ):
            with pytest.raises(EngramiaValidationError) as caught:
                call(memory)
            reported.append(caught.value.errors)
    assert reported[:3] == reported[3:]
