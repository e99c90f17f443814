"""Exporting Assistants threads and assistants against a loopback fake of the API."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from assistants.export import (
    AssistantsApiGone,
    ExportError,
    ExportInterrupted,
    OutputExistsError,
    TerminalProgress,
    export_assistants,
    export_threads,
    make_client,
    read_thread_ids,
)
from tests.fakes.assistants_api import (
    API_KEY,
    FakeAssistantsApi,
    image_file_part,
    make_assistant,
    make_conversation,
    make_message,
    text_part,
)

DEFAULT_ASSISTANT = "asst_default"


@pytest.fixture
def fake() -> Iterator[FakeAssistantsApi]:
    with FakeAssistantsApi() as api:
        yield api


@pytest.fixture
def client(fake: FakeAssistantsApi) -> openai.OpenAI:
    return make_client(
        {"OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": fake.base_url}, max_retries=2, timeout=5
    )


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "export.ndjson"


def export(client: openai.OpenAI, thread_ids: list[str], out: Path, **kwargs: Any) -> Any:
    kwargs.setdefault("retry_delay", 0)
    return export_threads(client, thread_ids, DEFAULT_ASSISTANT, out, **kwargs)


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_thread_of_250_messages_is_paged_in_three_requests_in_order(fake, client, out):
    fake.add_thread("thread_a", make_conversation("thread_a", 250))

    summary = export(client, ["thread_a"], out)

    lines = read_lines(out)
    assert [line["message_id"] for line in lines] == [
        f"msg_thread_a_{number:04d}" for number in range(250)
    ]
    requests = fake.requests_for("thread_a")
    assert [r.query.get("after") for r in requests] == [
        None,
        "msg_thread_a_0099",
        "msg_thread_a_0199",
    ]
    assert all(r.query["order"] == "asc" and r.query["limit"] == "100" for r in requests)
    assert summary.threads_exported == 1
    assert summary.messages == 250


def test_ndjson_line_carries_the_message_fields(fake, client, out):
    fake.add_thread(
        "thread_a",
        [
            make_message("thread_a", 0, role="user", text="How do I reset?"),
            make_message(
                "thread_a",
                1,
                role="assistant",
                assistant_id="asst_real",
                run_id="run_1",
                parts=[text_part("Step one."), text_part("Step two.")],
            ),
        ],
    )

    export(client, ["thread_a"], out)

    user, answer = read_lines(out)
    assert user == {
        "thread_id": "thread_a",
        "assistant_id": DEFAULT_ASSISTANT,
        "message_id": "msg_thread_a_0000",
        "role": "user",
        "text": "How do I reset?",
        "created_at": 1_700_000_000,
        "attachments": [],
        "run_id": None,
    }
    assert answer["assistant_id"] == "asst_real"
    assert answer["run_id"] == "run_1"
    assert answer["text"] == "Step one.\n\nStep two."


def test_message_without_text_is_written_with_its_files(fake, client, out):
    fake.add_thread(
        "thread_a",
        [
            make_message(
                "thread_a",
                0,
                parts=[image_file_part("file_img")],
                attachments=[{"file_id": "file_doc", "tools": [{"type": "file_search"}]}],
            ),
            make_message(
                "thread_a", 1, parts=[text_part("see chart"), image_file_part("file_chart")]
            ),
        ],
    )

    summary = export(client, ["thread_a"], out)

    first, second = read_lines(out)
    assert first["text"] == ""
    assert first["attachments"] == ["file_doc", "file_img"]
    assert second["text"] == "see chart"
    assert second["attachments"] == ["file_chart"]
    assert summary.messages == 2


def test_one_429_is_retried_and_the_export_succeeds(fake, client, out):
    fake.add_thread("thread_a", make_conversation("thread_a", 3))
    fake.fail_once("thread_a", 429, retry_after_ms=1)

    summary = export(client, ["thread_a"], out)

    assert [r.status for r in fake.requests_for("thread_a")] == [429, 200]
    assert summary.threads_exported == 1
    assert len(read_lines(out)) == 3


def test_retry_after_from_a_429_is_honoured(fake, client, out):
    fake.add_thread("thread_a", make_conversation("thread_a", 1))
    fake.fail_once("thread_a", 429, retry_after_ms=1200)

    export(client, ["thread_a"], out)

    refused, served = fake.requests_for("thread_a")
    # Without retry-after the SDK would wait at most 0.5 s before its first retry.
    assert served.at - refused.at >= 1.1


def test_one_500_is_retried_and_the_export_succeeds(fake, client, out):
    fake.add_thread("thread_a", make_conversation("thread_a", 2))
    fake.fail_once("thread_a", 500, retry_after_ms=1)

    summary = export(client, ["thread_a"], out)

    assert [r.status for r in fake.requests_for("thread_a")] == [500, 200]
    assert summary.failed == []
    assert len(read_lines(out)) == 2


def test_persistent_500_marks_the_thread_failed_and_continues(fake, client, out):
    fake.add_thread("thread_a", make_conversation("thread_a", 2))
    fake.add_thread("thread_b", make_conversation("thread_b", 2))
    for _ in range(3):
        fake.fail_once("thread_a", 500, retry_after_ms=1)

    summary = export(client, ["thread_a", "thread_b"], out)

    assert [failure.thread_id for failure in summary.failed] == ["thread_a"]
    assert summary.failed[0].reason.startswith("HTTP 500")
    assert {line["thread_id"] for line in read_lines(out)} == {"thread_b"}


def test_404_and_410_threads_are_reported_and_skipped(fake, client, out):
    fake.add_thread("thread_a", make_conversation("thread_a", 2))
    fake.add_thread("thread_gone", make_conversation("thread_gone", 2))
    fake.set_thread_status("thread_gone", 410)

    summary = export(client, ["thread_missing", "thread_a", "thread_gone"], out)

    assert summary.not_found == ["thread_missing"]
    assert summary.gone == ["thread_gone"]
    assert summary.threads_exported == 1
    assert {line["thread_id"] for line in read_lines(out)} == {"thread_a"}


def test_every_thread_gone_raises_with_a_plain_message(fake, client, out):
    for thread_id in ("thread_a", "thread_b"):
        fake.add_thread(thread_id, make_conversation(thread_id, 2))
        fake.set_thread_status(thread_id, 410)

    with pytest.raises(AssistantsApiGone) as raised:
        export(client, ["thread_a", "thread_b"], out)

    message = str(raised.value)
    assert "Assistants API has been shut down" in message
    assert "410 Gone since 26 Aug 2026" in message
    assert "engramia assistants_import FILE --project T/P" in message
    assert raised.value.summary is not None
    assert raised.value.summary.gone == ["thread_a", "thread_b"]
    assert not out.exists() or out.read_text() == ""


def test_resume_after_an_export_with_one_410_thread_reports_that_thread(fake, client, out):
    for thread_id in ("thread_a", "thread_gone", "thread_b"):
        fake.add_thread(thread_id, make_conversation(thread_id, 2))
    fake.set_thread_status("thread_gone", 410)
    thread_ids = ["thread_a", "thread_gone", "thread_b"]
    first = export(client, thread_ids, out)
    assert first.gone == ["thread_gone"] and first.threads_exported == 2

    # Only the 410 thread is left to ask; the two in the checkpoint answered, so the API is up.
    again = export(client, thread_ids, out, resume=True)

    assert again.gone == ["thread_gone"]
    assert again.threads_skipped_resume == 2 and again.threads_exported == 0
    assert {line["thread_id"] for line in read_lines(out)} == {"thread_a", "thread_b"}


def test_assistants_export_resume_with_one_410_thread_exits_0_naming_it(
    fake, out, tmp_path, monkeypatch, capsys
):
    from django.core.management import call_command

    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    for thread_id in ("thread_a", "thread_gone", "thread_b"):
        fake.add_thread(thread_id, make_conversation(thread_id, 2))
    fake.set_thread_status("thread_gone", 410)
    ids = tmp_path / "threads.txt"
    ids.write_text("thread_a\nthread_gone\nthread_b\n")
    command = ["assistants_export", "--thread-ids", str(ids), "--assistant-id", "asst_x"]
    call_command(*command, "--out", str(out))
    capsys.readouterr()

    call_command(*command, "--out", str(out), "--resume")  # raises (exit 1) on failure

    report = capsys.readouterr().out
    assert "0/3 threads" in report and "(2 already done)" in report
    assert "gone (410): thread_gone" in report and "shut down" not in report


def test_api_answering_410_everywhere_stops_after_a_few_threads(fake, client, out):
    fake.everything_gone = True
    thread_ids = [f"thread_{number}" for number in range(10)]

    with pytest.raises(AssistantsApiGone):
        export(client, thread_ids, out, gone_abort_after=3)

    assert len(fake.requests) == 3


def test_crash_mid_export_then_resume_writes_every_message_once(fake, client, out):
    thread_ids = ["thread_a", "thread_b", "thread_c", "thread_d"]
    for thread_id in thread_ids:
        fake.add_thread(thread_id, make_conversation(thread_id, 250))
    # Threads a and b take three pages each; the server dies on c's second page.
    fake.fail_after(7)
    no_sdk_retries = make_client(
        {"OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": fake.base_url}, max_retries=0, timeout=5
    )

    with pytest.raises(ExportInterrupted) as raised:
        export(no_sdk_retries, thread_ids, out, connection_retries=1)

    assert [r.status for r in fake.requests_for("thread_c")] == [200, None, None]

    assert raised.value.summary.threads_exported == 2
    assert {line["thread_id"] for line in read_lines(out)} == {"thread_a", "thread_b"}

    fake.fail_after(None)
    fake.clear_requests()
    summary = export(client, thread_ids, out, resume=True)

    assert {r.path for r in fake.requests} == {
        "/v1/threads/thread_c/messages",
        "/v1/threads/thread_d/messages",
    }
    assert summary.threads_skipped_resume == 2
    assert summary.threads_exported == 2
    ids = [line["message_id"] for line in read_lines(out)]
    assert len(ids) == 1000
    assert len(set(ids)) == 1000


def test_interrupt_from_progress_callback_then_resume_skips_finished_threads(fake, client, out):
    thread_ids = ["thread_a", "thread_b", "thread_c"]
    for thread_id in thread_ids:
        fake.add_thread(thread_id, make_conversation(thread_id, 5))

    def stop_after_two(done: int, total: int, messages: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export(client, thread_ids, out, progress=stop_after_two)

    fake.clear_requests()
    summary = export(client, thread_ids, out, resume=True)

    assert [r.path for r in fake.requests] == ["/v1/threads/thread_c/messages"]
    assert summary.threads_skipped_resume == 2
    ids = [line["message_id"] for line in read_lines(out)]
    assert sorted(ids) == sorted(f"msg_{t}_{n:04d}" for t in thread_ids for n in range(5))


def test_resume_drops_a_thread_appended_but_not_checkpointed(fake, client, out):
    fake.add_thread("thread_a", make_conversation("thread_a", 2))
    fake.add_thread("thread_b", make_conversation("thread_b", 2))
    export(client, ["thread_a"], out)
    # As if the process died after appending thread_b, half-written, before its checkpoint.
    with out.open("a", encoding="utf-8") as handle:
        handle.write('{"thread_id": "thread_b", "message_id": "msg_thread_b_0000"}\n{"thre')

    summary = export(client, ["thread_a", "thread_b"], out, resume=True)

    assert summary.discarded_tail_bytes > 0
    ids = [line["message_id"] for line in read_lines(out)]
    assert ids == [
        "msg_thread_a_0000",
        "msg_thread_a_0001",
        "msg_thread_b_0000",
        "msg_thread_b_0001",
    ]


def test_non_empty_output_is_refused_without_resume(fake, client, out):
    fake.add_thread("thread_a", make_conversation("thread_a", 2))
    out.write_text("keep me\n", encoding="utf-8")

    with pytest.raises(OutputExistsError, match="--resume"):
        export(client, ["thread_a"], out)

    assert out.read_text(encoding="utf-8") == "keep me\n"
    assert fake.requests == []


def test_empty_output_file_is_used(fake, client, out):
    fake.add_thread("thread_a", make_conversation("thread_a", 2))
    out.touch()

    summary = export(client, ["thread_a"], out)

    assert summary.messages == 2
    assert len(read_lines(out)) == 2


def test_resume_refuses_output_without_checkpoint(fake, client, out):
    out.write_text('{"message_id": "msg_x"}\n', encoding="utf-8")

    with pytest.raises(ExportError, match="no checkpoint"):
        export(client, ["thread_a"], out, resume=True)

    assert out.read_text(encoding="utf-8") == '{"message_id": "msg_x"}\n'


def test_thread_ids_file_skips_blanks_comments_and_duplicates(tmp_path):
    path = tmp_path / "threads.txt"
    path.write_text(
        "# exported from the admin\nthread_a\n\n  thread_b  \nthread_a\nthread_c # vip\n",
        encoding="utf-8",
    )

    assert read_thread_ids(path) == ["thread_a", "thread_b", "thread_c"]


def test_duplicate_thread_ids_are_exported_once(fake, client, out):
    fake.add_thread("thread_a", make_conversation("thread_a", 2))

    summary = export(client, ["thread_a", "thread_a"], out)

    assert summary.threads_total == 1
    assert len(read_lines(out)) == 2
    assert len(fake.requests_for("thread_a")) == 1


def test_progress_callback_sees_every_thread(fake, client, out):
    fake.add_thread("thread_a", make_conversation("thread_a", 3))
    fake.add_thread("thread_b", make_conversation("thread_b", 4))
    calls: list[tuple[int, int, int]] = []

    export(
        client,
        ["thread_a", "thread_b"],
        out,
        progress=lambda done, total, messages: calls.append((done, total, messages)),
    )

    assert calls == [(0, 2, 0), (1, 2, 3), (2, 2, 7)]


def test_terminal_progress_draws_on_a_terminal_only():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    pipe, terminal = io.StringIO(), Terminal()
    for stream in (pipe, terminal):
        bar = TerminalProgress(stream, width=10)
        bar(1, 4, 25)
        bar.close()

    assert pipe.getvalue() == ""
    assert terminal.getvalue() == "\r[##........] 1/4 threads, 25 messages\n"


def test_make_client_requires_an_api_key():
    with pytest.raises(ExportError, match="OPENAI_API_KEY"):
        make_client({"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})


def test_assistants_export_shape(fake, client, tmp_path):
    fake.add_assistant(
        make_assistant(
            "asst_support",
            name="Support",
            instructions="Answer tickets.",
            tools=[
                {
                    "type": "function",
                    "function": {
                        "name": "lookup_order",
                        "description": "Find an order by id.",
                        "parameters": {
                            "type": "object",
                            "properties": {"order_id": {"type": "string"}},
                            "required": ["order_id"],
                        },
                    },
                },
                {"type": "file_search"},
                {"type": "code_interpreter"},
            ],
            tool_resources={
                "file_search": {"vector_store_ids": ["vs_manuals"]},
                "code_interpreter": {"file_ids": ["file_prices"]},
            },
            metadata={"team": "support"},
        )
    )
    for number in range(150):
        fake.add_assistant(make_assistant(f"asst_{number:03d}", created_at=1_700_000_100 + number))
    path = tmp_path / "assistants.json"

    count = export_assistants(client, path)

    data = json.loads(path.read_text(encoding="utf-8"))
    assert count == 151
    assert len({item["id"] for item in data}) == 151
    assert len([r for r in fake.requests if r.path == "/v1/assistants"]) == 2
    support = next(item for item in data if item["id"] == "asst_support")
    assert support == {
        "id": "asst_support",
        "name": "Support",
        "description": None,
        "instructions": "Answer tickets.",
        "model": "gpt-4o",
        "tools": [
            {
                "type": "function",
                "name": "lookup_order",
                "description": "Find an order by id.",
                "parameters": {
                    "type": "object",
                    "properties": {"order_id": {"type": "string"}},
                    "required": ["order_id"],
                },
            },
            {"type": "file_search"},
            {"type": "code_interpreter"},
        ],
        "file_ids": ["file_prices"],
        "vector_store_ids": ["vs_manuals"],
        "metadata": {"team": "support"},
        "created_at": 1_700_000_000,
    }


def test_assistants_export_on_a_shut_down_api_raises_gone(fake, client, tmp_path):
    fake.everything_gone = True
    path = tmp_path / "assistants.json"

    with pytest.raises(AssistantsApiGone, match="shut down"):
        export_assistants(client, path)

    assert not path.exists()
