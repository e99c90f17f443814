"""The dual-write code in docs/migration/cutover.md runs as written, through every read path."""

import re
from pathlib import Path

from engramia import Memory
from tenants.services import set_read_path

DOC = Path(__file__).resolve().parents[2] / "docs" / "migration" / "cutover.md"


class LegacyStore:
    """Stands in for the application's old Assistants-era store."""

    def __init__(self):
        self.rows = []

    def append(self, thread_id, question, answer):
        self.rows.append((thread_id, question, answer))

    def history(self, thread_id):
        return [answer for thread, _, answer in self.rows if thread == thread_id]


def test_dual_write_snippet_through_all_read_paths(project_a, monkeypatch):
    monkeypatch.delenv("ENGRAMIA_API_URL", raising=False)
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    comparisons = []
    namespace = {
        "memory": Memory(project="acme/support"),
        "legacy_store": LegacyStore(),
        "log_comparison": lambda legacy, shadow: comparisons.append((legacy, shadow)),
    }
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - the documented snippet
    remember, context_for, legacy = (
        namespace["remember"],
        namespace["context_for"],
        namespace["legacy_store"],
    )

    set_read_path(project=project_a, read_path="openai", reason="before", actor=None)
    remember("t1", "How do I rotate logs?", "Use logrotate.")
    assert legacy.rows and context_for("t1", "How do I rotate logs?") == ["Use logrotate."]

    set_read_path(project=project_a, read_path="dual", reason="compare", actor=None)
    remember("t1", "How do I parse CSV?", "Use the csv module.")
    assert len(legacy.rows) == 2
    context_for("t1", "How do I parse CSV?")
    assert comparisons and "Use the csv module." in comparisons[-1][1]

    set_read_path(project=project_a, read_path="engramia", reason="cut over", actor=None)
    remember("t1", "How do I zip files?", "Use zipfile.")
    assert len(legacy.rows) == 2
    assert context_for("t1", "How do I zip files?")[0] == "Use zipfile."
