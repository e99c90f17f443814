"""Threads and assistants imported from an OpenAI export keep their ids on /openai/v1."""

from __future__ import annotations

import json

from django.core.management import call_command

from assistants.models import Assistant, Message, Thread
from memory.models import Pattern
from tests.assistants.openai.conftest import run_jobs

THREAD = "thread_abc123"


def record(number, role, text, *, thread=THREAD):
    return {
        "thread_id": thread,
        "assistant_id": "asst_support",
        "message_id": f"msg_{thread}_{number}",
        "role": role,
        "text": text,
        "created_at": 1_700_000_000 + number,
        "attachments": [],
        "run_id": None,
    }


EXPORT = [
    record(1, "user", "How do I reset my password?"),
    record(2, "assistant", "Use the link on the login page."),
    record(3, "user", "The link expired."),
    record(4, "assistant", "Ask for a new one; links last an hour."),
]
# As assistants_export writes a definition: a function tool's fields at the top level.
DEFINITION = {
    "id": "asst_support",
    "name": "Support",
    "description": None,
    "instructions": "Answer support tickets.",
    "model": "gpt-4o",
    "tools": [
        {
            "type": "function",
            "name": "lookup_account",
            "description": "Find an account by email.",
            "parameters": {"type": "object", "properties": {"email": {"type": "string"}}},
        },
        {"type": "code_interpreter"},
    ],
    "file_ids": [],
    "vector_store_ids": [],
    "metadata": {"team": "support"},
    "created_at": 1_690_000_000,
}


def import_export(tmp_path, capsys, *extra):
    export = tmp_path / "export.ndjson"
    export.write_text("\n".join(json.dumps(row) for row in EXPORT) + "\n")
    definitions = tmp_path / "assistants.json"
    definitions.write_text(json.dumps([DEFINITION]))
    capsys.readouterr()
    call_command(
        "assistants_import",
        str(export),
        "--project",
        "acme/support",
        "--assistants",
        str(definitions),
        "--json",
        *extra,
    )
    return json.loads(capsys.readouterr().out)


def test_imported_threads_keep_their_ids_and_history(api, owner, tmp_path, capsys):
    summary = import_export(tmp_path, capsys)
    assert (summary["imported"], summary["threads_restored"], summary["messages_restored"]) == (
        2,
        1,
        4,
    )
    assert summary["definitions"]["assistants_restored"] == 1
    history = api("get", f"/threads/{THREAD}/messages", QUERY_STRING="order=asc").json()
    assert [m["id"] for m in history["data"]] == [f"msg_{THREAD}_{n}" for n in range(1, 5)]
    assert [m["content"][0]["text"]["value"] for m in history["data"]][1] == (
        "Use the link on the login page."
    )
    assert history["data"][0]["created_at"] == 1_700_000_001
    assert [m["assistant_id"] for m in history["data"]] == [None, "asst_support"] * 2
    assert api("get", f"/threads/{THREAD}").json()["created_at"] == 1_700_000_001

    assistant = api("get", "/assistants/asst_support").json()
    assert (assistant["instructions"], assistant["created_at"]) == (
        "Answer support tickets.",
        1_690_000_000,
    )
    assert [tool["type"] for tool in assistant["tools"]] == ["function"]
    assert assistant["tools"][0]["function"]["name"] == "lookup_account"
    from skills.models import Skill

    assert Skill.objects.get(project=owner.project).name == "lookup_account"


def test_a_new_run_on_an_imported_thread_continues_its_history(api, tmp_path, capsys, llm):
    import_export(tmp_path, capsys)
    api("post", f"/threads/{THREAD}/messages", {"role": "user", "content": "Still stuck."})
    api("post", f"/threads/{THREAD}/runs", {"assistant_id": "asst_support"})
    run_jobs()
    sent = llm.requests[-1].json["messages"]
    assert sent[0] == {"role": "system", "content": sent[0]["content"]}
    assert sent[0]["content"].startswith("Answer support tickets.")
    assert [m["content"] for m in sent[1:]] == [
        "How do I reset my password?",
        "Use the link on the login page.",
        "The link expired.",
        "Ask for a new one; links last an hour.",
        "Still stuck.",
    ]
    assert llm.requests[-1].json["model"] == "gpt-4o"


def test_importing_again_restores_nothing_twice(api, tmp_path, capsys):
    import_export(tmp_path, capsys)
    again = import_export(tmp_path, capsys)
    assert (again["threads_restored"], again["messages_restored"], again["imported"]) == (0, 0, 0)
    assert again["definitions"]["assistants_restored"] == 0
    assert Message.objects.count() == 4 and Thread.objects.count() == 1
    assert Assistant.objects.count() == 1 and Pattern.objects.count() == 2


def test_a_dry_run_counts_what_it_would_restore_and_stores_nothing(db, project_a, tmp_path, capsys):
    summary = import_export(tmp_path, capsys, "--dry-run")
    assert (summary["threads_restored"], summary["messages_restored"]) == (1, 4)
    assert not Thread.objects.exists() and not Message.objects.exists()


def test_grouped_by_thread_the_thread_lives_in_its_own_project(db, project_a, tmp_path, capsys):
    summary = import_export(tmp_path, capsys, "--group-by", "thread")
    thread = Thread.objects.get(public_id=THREAD)
    assert thread.project.slug == "thread-abc123"
    assert summary["messages_restored"] == 4
