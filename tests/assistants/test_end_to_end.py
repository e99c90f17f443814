"""The afternoon migration, end to end, against a loopback Assistants API and the real openai SDK.

export (paged, one 429, a 410 thread, non-text content, a crash and --resume) → import →
re-import (nothing new) → verify with the local model (≥ 0.95 in the top 3) → audited cut-over.
"""

import itertools
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from memory.models import Pattern
from tenants.models import AuditEntry, Project
from tests.fakes.assistants_api import API_KEY, FakeAssistantsApi, image_file_part, make_message

pytestmark = pytest.mark.model

ACTIONS = [
    "parse",
    "validate",
    "compress",
    "encrypt",
    "sort",
    "deduplicate",
    "paginate",
    "cache",
    "stream",
    "serialize",
]
SUBJECTS = [
    "CSV files",
    "JSON payloads",
    "server log lines",
    "uploaded images",
    "database rows",
    "HTTP responses",
]
QUESTIONS = [
    f"How can I {action} {subject} in a Python service?"
    for action, subject in itertools.product(ACTIONS, SUBJECTS)
]


def conversation(thread_id, questions, start=0):
    messages = []
    for index, question in enumerate(questions):
        messages.append(make_message(thread_id, start + 2 * index, role="user", text=question))
        messages.append(
            make_message(
                thread_id,
                start + 2 * index + 1,
                role="assistant",
                assistant_id="asst_support",
                text=f"Answer: {question.lower()} -> use a library.",
            )
        )
    return messages


@pytest.fixture
def assistants_api(monkeypatch):
    with FakeAssistantsApi() as api:
        monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", api.base_url)
        yield api


def test_export_import_verify_cutover(assistants_api, owner, tmp_path, capsys, monkeypatch):
    api = assistants_api
    api.add_thread(
        "thread_big", conversation("thread_big", QUESTIONS[:55])
    )  # 110 messages: 2 pages
    api.add_thread("thread_small", conversation("thread_small", QUESTIONS[55:]))
    images = conversation("thread_images", ["Describe this chart for me please"])
    images.insert(
        1,
        make_message(
            "thread_images",
            50,
            role="user",
            parts=[image_file_part("file_png")],
            created_at=images[0]["created_at"],
        ),
    )
    api.add_thread("thread_images", images)
    api.set_thread_status("thread_gone", 410)
    api.fail_once("thread_small", 429, retry_after_ms=1)
    ids = tmp_path / "threads.txt"
    ids.write_text("thread_big\nthread_gone\nthread_small\nthread_images\n")
    out = tmp_path / "export.ndjson"
    export = [
        "assistants_export",
        "--thread-ids",
        str(ids),
        "--assistant-id",
        "asst_support",
        "--out",
        str(out),
    ]

    api.fail_after(1)  # the connection dies after the first request: a crash mid-export
    with pytest.raises(CommandError, match="resume"):
        call_command(*export, "--max-retries", "0")
    api.fail_after(None)
    call_command(*export, "--resume")
    lines = [json.loads(row) for row in out.read_text().splitlines()]
    message_ids = [row["message_id"] for row in lines]
    assert len(message_ids) == len(set(message_ids)) == 110 + 10 + 3
    assert any(row["attachments"] == ["file_png"] and row["text"] == "" for row in lines)
    assert len(api.requests_for("thread_small")) == 2  # the 429, then success
    capsys.readouterr()

    project = Project.objects.get(pk=owner.project.pk)
    project.embedding_model = "local:all-MiniLM-L6-v2"
    project.save()
    call_command("assistants_import", str(out), "--project", "acme/support", "--json")
    first = json.loads(capsys.readouterr().out)
    assert first["threads"] == 3 and first["pairs"] == 61 and first["imported"] == 61
    assert first["errors"] == 0 and first["patterns_per_second"] > 0
    assert set(first) >= {
        "threads",
        "pairs",
        "imported",
        "skipped",
        "errors",
        "patterns_per_second",
    }
    call_command("assistants_import", str(out), "--project", "acme/support", "--json")
    again = json.loads(capsys.readouterr().out)
    assert again["imported"] == 0 and again["skipped"] == 61
    assert Pattern.objects.filter(project=project).count() == 61

    call_command("assistants_verify", str(out), "--project", "acme/support", "--json")
    verified = json.loads(capsys.readouterr().out)
    assert verified["checked"] == 61 and verified["share"] >= 0.95, verified["misses"][:5]

    monkeypatch.setenv("ENGRAMIA_ACTOR", owner.user.email)
    call_command(
        "cutover", "--project", "acme/support", "--read-path", "dual", "--reason", "dual-write week"
    )
    call_command(
        "cutover",
        "--project",
        "acme/support",
        "--read-path",
        "engramia",
        "--reason",
        "verified 100%",
    )
    entries = AuditEntry.objects.filter(
        project_id=project.pk, changes__has_key="read_path", action=AuditEntry.Action.UPDATE
    ).order_by("timestamp")
    assert [entry.changes["read_path"] for entry in entries] == [
        ["engramia", "dual"],
        ["dual", "engramia"],
    ]
    assert all(entry.actor == owner.user for entry in entries)
    assert entries.last().additional_data["reason"] == "verified 100%"


def test_export_when_the_api_is_gone_says_so_plainly(assistants_api, tmp_path):
    assistants_api.everything_gone = True
    ids = tmp_path / "threads.txt"
    ids.write_text("thread_a\nthread_b\n")
    with pytest.raises(CommandError) as raised:
        call_command(
            "assistants_export",
            "--thread-ids",
            str(ids),
            "--assistant-id",
            "asst_x",
            "--out",
            str(tmp_path / "out.ndjson"),
        )
    assert "shut down" in str(raised.value) and "assistants_import" in str(raised.value)


def test_rollback_is_an_audited_cutover_back_to_openai(owner, capsys):
    call_command(
        "cutover",
        "--project",
        "acme/support",
        "--read-path",
        "openai",
        "--reason",
        "roll back: misses in verify",
    )
    assert Project.objects.get(pk=owner.project.pk).read_path == "openai"
    assert "engramia -> openai" in capsys.readouterr().out
    with pytest.raises(CommandError):
        call_command(
            "cutover", "--project", "acme/support", "--read-path", "sideways", "--reason", "x"
        )
