"""assistants_import: pairing, idempotency, grouping, definitions, bad files, and the API job."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from assistants.importer import import_assistants_export
from memory.models import Document, Pattern
from tenants.models import Project


def line(thread, number, role, text, *, assistant="asst_main", created=None):
    return json.dumps(
        {
            "thread_id": thread,
            "assistant_id": assistant,
            "message_id": f"msg_{thread}_{number}",
            "role": role,
            "text": text,
            "created_at": created or 1_700_000_000 + number,
            "attachments": [],
        }
    )


def export_bytes(*lines):
    return ("\n".join(lines) + "\n").encode()


def run(project, data, **options):
    options.setdefault("actor", None)
    return import_assistants_export(project=project, stream=io.BytesIO(data), **options)


SAMPLE = export_bytes(
    line("t1", 1, "user", "How do I parse CSV?"),
    line("t1", 2, "assistant", "Use the csv module."),
    line("t1", 3, "user", "And write it back?"),
    line("t1", 4, "assistant", "csv.writer."),
    line("t1", 5, "assistant", "Or DictWriter."),
    line("t2", 1, "assistant", "Hello! (no question before me)"),
    line("t2", 2, "user", "What is a mutex?"),
    line("t2", 3, "assistant", "A lock."),
    line("t2", 4, "user", "Thanks, bye"),
)


def test_pairs_each_question_with_the_replies_that_follow(project_a):
    summary = run(project_a, SAMPLE)
    assert (summary.threads, summary.pairs, summary.imported, summary.unpaired) == (2, 3, 3, 2)
    second = Pattern.objects.get(external_id="openai-msg:msg_t1_3")
    assert second.task == "And write it back?" and second.code == "csv.writer.\n\nOr DictWriter."
    assert second.run_id == "openai-thread:t1" and second.source == "import"
    assert second.eval_score == 5.0 and int(second.created_at.timestamp()) == 1_700_000_003
    assert second.metadata["assistant_message_ids"] == ["msg_t1_4", "msg_t1_5"]


def test_out_of_order_lines_are_sorted_by_time(project_a):
    data = export_bytes(line("t", 2, "assistant", "answer"), line("t", 1, "user", "question"))
    assert run(project_a, data).imported == 1


def test_reimport_stores_nothing_twice_and_dry_run_stores_nothing(project_a):
    dry = run(project_a, SAMPLE, dry_run=True)
    assert dry.imported == 3 and Pattern.objects.count() == 0
    run(project_a, SAMPLE)
    again = run(project_a, SAMPLE)
    assert (again.imported, again.skipped) == (0, 3)
    assert run(project_a, SAMPLE, dry_run=True).imported == 0
    assert Pattern.objects.count() == 3


def test_group_by_assistant_and_thread(project_a):
    data = export_bytes(
        line("t1", 1, "user", "q1", assistant="asst_Alpha"),
        line("t1", 2, "assistant", "a1", assistant="asst_Alpha"),
        line("t2", 1, "user", "q2", assistant="asst_Beta"),
        line("t2", 2, "assistant", "a2", assistant="asst_Beta"),
    )
    summary = run(project_a, data, group_by="assistant")
    assert summary.projects == ["acme/asst-alpha", "acme/asst-beta"]
    assert Project.objects.get(slug="asst-alpha").patterns.count() == 1
    by_thread = run(project_a, data, group_by="thread")
    assert by_thread.projects == ["acme/t1", "acme/t2"]


def test_bad_lines_are_reported_with_line_numbers_and_the_rest_imports(project_a):
    big = json.dumps(
        {
            "thread_id": "t",
            "message_id": "m",
            "role": "user",
            "created_at": 1,
            "text": "x" * (10 * 1024 * 1024),
        }
    )
    data = b"\n".join(
        [
            b"{not json",
            json.dumps({"thread_id": "t9", "role": "user"}).encode(),
            json.dumps([1, 2]).encode(),
            json.dumps(
                {
                    "thread_id": "t9",
                    "message_id": "m1",
                    "role": "wizard",
                    "text": "x",
                    "created_at": 1,
                }
            ).encode(),
            big.encode(),
            line("t3", 1, "user", "valid question").encode(),
            line("t3", 2, "assistant", "valid answer").encode(),
            b"",
        ]
    )
    summary = run(project_a, data)
    assert summary.imported == 1 and summary.errors == 5
    reasons = {error["line"]: error["reason"] for error in summary.error_lines}
    assert (
        reasons[1].startswith("not valid JSON")
        and "missing field(s): message_id, text, created_at" in reasons[2]
    )
    assert (
        reasons[3] == "not a JSON object"
        and "unknown role" in reasons[4]
        and "longer than" in reasons[5]
    )


def test_third_party_jsonl_shapes_are_accepted(project_a):
    data = export_bytes(
        json.dumps(
            {
                "conversation_id": "c1",
                "id": "u1",
                "author": "human",
                "content": "hi there",
                "timestamp": "2025-01-02T03:04:05Z",
            }
        ),
        json.dumps(
            {
                "conversation_id": "c1",
                "id": "a1",
                "author": "ai",
                "content": [{"type": "text", "text": "hello"}],
                "timestamp": 1735787046000,
            }
        ),
    )
    summary = run(project_a, data)
    assert summary.imported == 1 and Pattern.objects.get().code == "hello"


def test_empty_and_unreadable_files(project_a, tmp_path, capsys):
    assert run(project_a, b"").pairs == 0
    empty = tmp_path / "empty.ndjson"
    empty.write_bytes(b"")
    call_command("assistants_import", str(empty), "--project", "acme/support", "--json")
    assert json.loads(capsys.readouterr().out)["pairs"] == 0
    with pytest.raises(CommandError, match="no such file"):
        call_command(
            "assistants_import", str(tmp_path / "missing.ndjson"), "--project", "acme/support"
        )
    with pytest.raises(CommandError, match="does not exist"):
        call_command("assistants_import", str(empty), "--project", "acme/nope")


def test_definitions_become_instructions_skills_and_documents(project_a, tmp_path, capsys):
    export = tmp_path / "export.ndjson"
    export.write_bytes(SAMPLE)
    assistants = tmp_path / "assistants.json"
    assistants.write_text(
        json.dumps(
            [
                {
                    "id": "asst_main",
                    "instructions": "You are the support bot.",
                    "tools": [
                        {
                            "type": "function",
                            "function": {
                                "name": "lookup_order",
                                "description": "Find an order",
                                "parameters": {
                                    "type": "object",
                                    "properties": {"id": {"type": "string"}},
                                },
                            },
                        },
                        {"type": "file_search"},
                    ],
                }
            ]
        )
    )
    files = tmp_path / "files"
    files.mkdir()
    (files / "faq.md").write_text("# FAQ\n\nRefunds take five days.")
    call_command(
        "assistants_import",
        str(export),
        "--project",
        "acme/support",
        "--assistants",
        str(assistants),
        "--files-dir",
        str(files),
        "--json",
    )
    payload = json.loads(capsys.readouterr().out)
    assert payload["imported"] == 3 and payload["definitions"]["skills"] == 1
    assert Project.objects.get(pk=project_a.pk).instructions == "You are the support bot."
    assert Document.objects.get().name == "faq.md"
    from skills.models import Skill

    assert Skill.objects.get().name == "lookup_order"


def test_import_through_the_api_is_a_job(owner, editor):
    from jobs.models import Job
    from jobs.services import run_job_inline

    assert (
        editor.client()
        .post("/v1/import/assistants", SAMPLE, content_type="application/x-ndjson")
        .status_code
        == 403
    )
    response = owner.client().post(
        "/v1/import/assistants?eval_score=7",
        SAMPLE,
        content_type="application/x-ndjson",
        HTTP_PREFER="respond-async",
    )
    assert response.status_code == 202 and response["Location"].startswith("/v1/jobs/")
    assert response["Preference-Applied"] == "respond-async"
    run_job_inline(Job.objects.get(pk=response.json()["job_id"]))
    job = owner.client().get(response["Location"]).json()
    assert job["status"] == "succeeded" and job["result"]["imported"] == 3
    assert Pattern.objects.filter(project=owner.project, eval_score=7).count() == 3
    bad = owner.client().post(
        "/v1/import/assistants?group_by=planet", SAMPLE, content_type="application/x-ndjson"
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["attr"] == "group_by"
    empty = owner.client().post("/v1/import/assistants", b"", content_type="application/x-ndjson")
    assert empty.status_code == 400


def test_cli_dry_run_reports_without_storing(project_a, tmp_path, capsys):
    export = tmp_path / "export.ndjson"
    export.write_bytes(SAMPLE)
    call_command(
        "assistants_import", str(export), "--project", "acme/support", "--dry-run", "--json"
    )
    payload = json.loads(capsys.readouterr().out)
    assert payload["dry_run"] is True and payload["imported"] == 3
    assert Pattern.objects.count() == 0
