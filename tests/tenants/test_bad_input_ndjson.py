"""An NDJSON import line holding U+0000 or a lone surrogate is that line's error, not a crash."""

import io
import json

from assistants.importer import import_assistants_export
from memory.models import Pattern


def _line(thread, number, role, text, **extra):
    record = {
        "thread_id": thread,
        "message_id": f"m{number}",
        "role": role,
        "text": text,
        "created_at": 1_700_000_000 + number,
        **extra,
    }
    return json.dumps(record).encode()  # ensure_ascii: "\ud800" and "\u0000" stay escapes


def test_lines_with_unstorable_text_are_reported_and_the_rest_imports(project_a):
    data = b"\n".join(
        [
            _line("t1", 1, "user", "nul \x00 in the question"),
            _line("t1", 2, "assistant", "lone \ud800 surrogate in the answer"),
            _line("t\x00", 3, "user", "nul in the thread id"),
            _line("t2", 4, "user", "a key", meta={"k\ud800": 1}),
            b'{"thread_id": "t3", "text": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
            _line("t4", 6, "user", "valid question"),
            _line("t4", 7, "assistant", "valid answer \U0001f600"),
        ]
    )
    summary = import_assistants_export(project=project_a, stream=io.BytesIO(data), actor=None)
    reasons = {error["line"]: error["reason"] for error in summary.error_lines}
    assert sorted(reasons) == [1, 2, 3, 4, 5]
    assert "text" in reasons[1] and "U+0000" in reasons[1]
    assert "text" in reasons[2] and "surrogate" in reasons[2]
    assert "thread_id" in reasons[3] and "meta.k\\ud800" in reasons[4]
    assert "nested" in reasons[5]
    assert summary.imported == 1
    assert Pattern.objects.get().code == "valid answer \U0001f600"
