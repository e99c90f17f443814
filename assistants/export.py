"""Export OpenAI Assistants threads and assistant definitions to files Engramia can import.

Django-free on purpose: the `assistants_export` management command parses arguments, calls
`make_client`, `read_thread_ids` and `export_threads`, and prints the `ExportSummary`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

import openai
from openai.pagination import SyncCursorPage
from openai.types.beta import Assistant
from openai.types.beta.threads import Message

PAGE_SIZE = 100
CHECKPOINT_VERSION = 1
GONE_MESSAGE = (
    "The OpenAI Assistants API has been shut down (410 Gone since 26 Aug 2026), so no new export "
    "can be made. If you already have an NDJSON export, import it with "
    "`engramia assistants_import FILE --project T/P`."
)

ProgressCallback = Callable[[int, int, int], None]
T = TypeVar("T")


class ExportError(Exception):
    """An export that cannot start or continue; the message is meant for the user."""


class OutputExistsError(ExportError):
    """The output file already holds data and resume was not asked for."""


class AssistantsApiGone(ExportError):
    """A 410 from the assistants list, or from every thread (none finished in the checkpoint)."""

    def __init__(self, summary: ExportSummary | None = None) -> None:
        super().__init__(GONE_MESSAGE)
        self.summary = summary


class ExportInterrupted(ExportError):
    """The API stayed unreachable; finished threads are checkpointed and resume can continue."""

    def __init__(self, message: str, summary: ExportSummary) -> None:
        super().__init__(message)
        self.summary = summary


@dataclass(frozen=True)
class FailedThread:
    """A thread that could not be exported, with the reason the API gave."""

    thread_id: str
    reason: str


@dataclass
class ExportSummary:
    """What one `export_threads` run did."""

    threads_total: int = 0
    threads_exported: int = 0
    threads_skipped_resume: int = 0
    messages: int = 0
    not_found: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    failed: list[FailedThread] = field(default_factory=list)
    elapsed: float = 0.0
    # Bytes after the last checkpoint that resume cut off: a thread whose checkpoint never landed.
    discarded_tail_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as JSON-ready data."""
        return asdict(self)


def make_client(
    env: Mapping[str, str] | None = None, *, max_retries: int = 5, timeout: float = 60.0
) -> openai.OpenAI:
    """Build an OpenAI client from OPENAI_API_KEY and OPENAI_BASE_URL with retries and timeout."""
    environ = os.environ if env is None else env
    api_key = environ.get("OPENAI_API_KEY", "").strip()
    if not api_key:
        raise ExportError("OPENAI_API_KEY is not set; export it with the key of the OpenAI project")
    base_url = environ.get("OPENAI_BASE_URL", "").strip() or None
    return openai.OpenAI(
        api_key=api_key, base_url=base_url, max_retries=max_retries, timeout=timeout
    )


def read_thread_ids(path: str | os.PathLike[str]) -> list[str]:
    """Read thread ids, one a line, ignoring blanks and # comments and dropping duplicates."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return _unique(line.split("#", 1)[0].strip() for line in lines)


def message_record(message: Message, default_assistant_id: str) -> dict[str, Any]:
    """Turn one SDK message into the NDJSON record the importer reads."""
    texts: list[str] = []
    file_ids: list[str] = [a.file_id for a in message.attachments or [] if a.file_id]
    for part in message.content:
        if part.type == "text":
            texts.append(part.text.value)
        elif part.type == "image_file":
            file_ids.append(part.image_file.file_id)
    return {
        "thread_id": message.thread_id,
        "assistant_id": message.assistant_id or default_assistant_id,
        "message_id": message.id,
        "role": message.role,
        "text": "\n\n".join(texts),
        "created_at": int(message.created_at),
        "attachments": _unique(file_ids),
        "run_id": message.run_id,
    }


def export_threads(
    client: openai.OpenAI,
    thread_ids: Iterable[str],
    assistant_id: str,
    out_path: str | os.PathLike[str],
    *,
    resume: bool = False,
    progress: ProgressCallback | None = None,
    connection_retries: int = 3,
    retry_delay: float = 1.0,
    gone_abort_after: int | None = 25,
) -> ExportSummary:
    """Append every message of each thread to `out_path` as NDJSON, one thread at a time."""
    started = time.monotonic()
    ids = _unique(thread_ids)
    summary = ExportSummary(threads_total=len(ids))
    checkpoint = _Checkpoint.open(Path(out_path), resume=resume, summary=summary)
    report = progress or _no_progress
    # Threads the checkpoint holds were answered by an earlier run: the API was serving then.
    answered_before = sum(1 for thread_id in ids if thread_id in checkpoint.finished)
    attempted = 0
    done = 0
    try:
        report(done, len(ids), summary.messages)
        for thread_id in ids:
            if thread_id in checkpoint.finished:
                summary.threads_skipped_resume += 1
            else:
                attempted += 1
                _export_one_thread(
                    client,
                    thread_id,
                    assistant_id,
                    checkpoint,
                    summary,
                    connection_retries=connection_retries,
                    retry_delay=retry_delay,
                )
                # A shut-down API answers 410 to everything: stop early rather than ask each thread.
                if (
                    gone_abort_after is not None
                    and len(summary.gone) >= gone_abort_after
                    and _every_answer_was_gone(summary, attempted + answered_before)
                ):
                    raise AssistantsApiGone(summary)
            done += 1
            report(done, len(ids), summary.messages)
        if attempted and _every_answer_was_gone(summary, attempted + answered_before):
            raise AssistantsApiGone(summary)
        return summary
    finally:
        summary.elapsed = time.monotonic() - started


def export_assistants(client: openai.OpenAI, out_path: str | os.PathLike[str]) -> int:
    """Write every assistant definition to `out_path` as a JSON list and return how many."""
    assistants: list[dict[str, Any]] = []
    after: str | None = None
    try:
        while True:
            page = _list_assistants_page(client, after)
            assistants.extend(assistant_record(assistant) for assistant in page.data)
            if not page.has_more or not page.data:
                break
            after = _next_cursor(after, page.data[-1].id)
    except openai.APIStatusError as error:
        if error.status_code == 410:
            raise AssistantsApiGone() from error
        raise
    _write_atomically(Path(out_path), json.dumps(assistants, ensure_ascii=False, indent=2) + "\n")
    return len(assistants)


def assistant_record(assistant: Assistant) -> dict[str, Any]:
    """Turn one SDK assistant into the JSON record the importer maps to skills and documents."""
    tools: list[dict[str, Any]] = []
    for tool in assistant.tools:
        if tool.type == "function":
            tools.append(
                {
                    "type": "function",
                    "name": tool.function.name,
                    "description": tool.function.description,
                    "parameters": tool.function.parameters,
                }
            )
        else:
            tools.append({"type": tool.type})
    resources = assistant.tool_resources
    code_interpreter = resources.code_interpreter if resources else None
    file_search = resources.file_search if resources else None
    return {
        "id": assistant.id,
        "name": assistant.name,
        "description": assistant.description,
        "instructions": assistant.instructions,
        "model": assistant.model,
        "tools": tools,
        "file_ids": list(code_interpreter.file_ids or []) if code_interpreter else [],
        "vector_store_ids": list(file_search.vector_store_ids or []) if file_search else [],
        "metadata": dict(assistant.metadata or {}),
        "created_at": int(assistant.created_at),
    }


class TerminalProgress:
    """A one-line progress bar on stderr that draws only on a terminal and is silent in pipes."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.width = width
        self.enabled = _is_terminal(self.stream)
        self._drawn = False

    def __call__(self, done: int, total: int, messages: int) -> None:
        """Redraw the bar for `done` of `total` threads."""
        if not self.enabled:
            return
        filled = self.width if total == 0 else self.width * done // total
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r[{bar}] {done}/{total} threads, {messages} messages")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """End the bar's line so later output starts on a fresh one."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _every_answer_was_gone(summary: ExportSummary, answered: int) -> bool:
    """Whether every thread answered, in this run or in the checkpoint, was a 410."""
    return len(summary.gone) == answered


def _export_one_thread(
    client: openai.OpenAI,
    thread_id: str,
    assistant_id: str,
    checkpoint: _Checkpoint,
    summary: ExportSummary,
    *,
    connection_retries: int,
    retry_delay: float,
) -> None:
    """Fetch one thread whole, then commit it, or record why it was skipped."""
    try:
        records = _fetch_thread(
            client, thread_id, assistant_id, attempts=connection_retries + 1, delay=retry_delay
        )
    except openai.AuthenticationError as error:
        raise ExportError(f"OpenAI rejected the API key (401): {_reason(error)}") from error
    except openai.NotFoundError:
        summary.not_found.append(thread_id)
        return
    except openai.APIStatusError as error:
        if error.status_code == 410:
            summary.gone.append(thread_id)
        else:
            summary.failed.append(FailedThread(thread_id, _reason(error)))
        return
    except openai.APIConnectionError as error:
        raise ExportInterrupted(
            f"lost the connection to the OpenAI API while exporting {thread_id} ({error}); "
            f"{summary.threads_exported + summary.threads_skipped_resume} of "
            f"{summary.threads_total} threads are saved, rerun with --resume to continue",
            summary,
        ) from error
    checkpoint.commit(thread_id, "".join(_ndjson_line(record) for record in records))
    summary.threads_exported += 1
    summary.messages += len(records)


def _fetch_thread(
    client: openai.OpenAI, thread_id: str, assistant_id: str, *, attempts: int, delay: float
) -> list[dict[str, Any]]:
    """Page through a thread's messages oldest first and return their records."""
    records: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = _retry_connection(
            _list_messages_page, client, thread_id, after, attempts=attempts, delay=delay
        )
        records.extend(message_record(message, assistant_id) for message in page.data)
        if not page.has_more or not page.data:
            return records
        after = _next_cursor(after, page.data[-1].id)


def _list_messages_page(
    client: openai.OpenAI, thread_id: str, after: str | None
) -> SyncCursorPage[Message]:
    """Fetch one page of a thread's messages through the official SDK."""
    # The SDK marks the Assistants endpoints deprecated; exporting them is the point here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return client.beta.threads.messages.list(
            thread_id, order="asc", limit=PAGE_SIZE, after=openai.omit if after is None else after
        )


def _list_assistants_page(client: openai.OpenAI, after: str | None) -> SyncCursorPage[Assistant]:
    """Fetch one page of assistants through the official SDK."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return client.beta.assistants.list(
            limit=PAGE_SIZE, after=openai.omit if after is None else after
        )


def _retry_connection(call: Callable[..., T], *args: Any, attempts: int, delay: float) -> T:
    """Call `call`, retrying connection errors the SDK's own retries did not get past."""
    for attempt in range(attempts):
        try:
            return call(*args)
        except openai.APIConnectionError:
            if attempt + 1 >= attempts:
                raise
            time.sleep(delay * 2**attempt)
    raise AssertionError("unreachable: attempts must be at least 1")


def _next_cursor(previous: str | None, last_id: str) -> str:
    """Return the next `after` cursor, refusing one that would page forever."""
    if last_id == previous:
        raise ExportError(f"the API returned the same page twice (after={last_id}); giving up")
    return last_id


class _Checkpoint:
    """The finished-thread list kept next to the output, and the appends it vouches for."""

    def __init__(self, out: Path, finished: list[str], output_bytes: int) -> None:
        self.out = out
        self.path = out.with_name(out.name + ".checkpoint.json")
        self.finished = set(finished)
        self._order = list(finished)
        self.output_bytes = output_bytes

    @classmethod
    def open(cls, out: Path, *, resume: bool, summary: ExportSummary) -> _Checkpoint:
        """Check the output and checkpoint agree with the resume flag, and load or start one."""
        size = out.stat().st_size if out.exists() else 0
        path = out.with_name(out.name + ".checkpoint.json")
        if size and not resume:
            raise OutputExistsError(
                f"{out} already exists and is not empty; pass --resume to continue that export "
                "or choose another --out file"
            )
        saved = _load_json(path) if resume and path.exists() else None
        if size and saved is None:
            raise ExportError(
                f"cannot resume: {out} is not empty but has no checkpoint {path.name}; "
                "choose another --out file"
            )
        if saved is None:
            checkpoint = cls(out, [], 0)
            checkpoint.save()
            return checkpoint
        finished = [str(thread_id) for thread_id in saved.get("finished_threads", [])]
        output_bytes = int(saved.get("output_bytes", 0))
        if size < output_bytes:
            raise ExportError(
                f"cannot resume: {out} is shorter than its checkpoint records "
                f"({size} < {output_bytes} bytes); it was changed, choose another --out file"
            )
        if size > output_bytes:
            # A crash after appending a thread but before checkpointing it: drop that tail so the
            # thread, fetched again, appears once.
            with out.open("r+b") as handle:
                handle.truncate(output_bytes)
                os.fsync(handle.fileno())
            summary.discarded_tail_bytes = size - output_bytes
        return cls(out, finished, output_bytes)

    def commit(self, thread_id: str, payload: str) -> None:
        """Append a whole thread durably, then record it as finished."""
        with self.out.open("ab") as handle:
            handle.write(payload.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
            self.output_bytes = handle.tell()
        self.finished.add(thread_id)
        self._order.append(thread_id)
        self.save()

    def save(self) -> None:
        """Replace the checkpoint file atomically."""
        data = {
            "version": CHECKPOINT_VERSION,
            "output": self.out.name,
            "output_bytes": self.output_bytes,
            "finished_threads": self._order,
        }
        _write_atomically(self.path, json.dumps(data) + "\n")


def _load_json(path: Path) -> dict[str, Any]:
    """Read a checkpoint, turning a damaged one into a user-facing error."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ExportError(f"cannot resume: checkpoint {path} is unreadable ({error})") from error
    if not isinstance(data, dict):
        raise ExportError(f"cannot resume: checkpoint {path} is not a JSON object")
    return data


def _write_atomically(path: Path, text: str) -> None:
    """Write `text` to a temporary sibling, fsync it, and rename it over `path`."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    try:
        directory = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(directory)
    finally:
        os.close(directory)


def _ndjson_line(record: dict[str, Any]) -> str:
    """Serialise one record as a line no line splitter can break apart."""
    line = json.dumps(record, ensure_ascii=False)
    # str.splitlines() also breaks on these; escaped they stay valid JSON on one line.
    for separator in ("\x85", "\u2028", "\u2029"):
        line = line.replace(separator, f"\\u{ord(separator):04x}")
    return line + "\n"


def _reason(error: openai.APIStatusError) -> str:
    """Describe an API error as `HTTP <status>: <message>`."""
    body = error.body
    message = body.get("message") if isinstance(body, dict) else None
    return f"HTTP {error.status_code}: {message or error.message}"


def _unique(items: Iterable[str]) -> list[str]:
    """Drop empty strings and repeats, keeping first-seen order."""
    return list(dict.fromkeys(item for item in items if item))


def _is_terminal(stream: TextIO) -> bool:
    """Say whether `stream` is an interactive terminal."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _no_progress(done: int, total: int, messages: int) -> None:
    """Ignore progress."""
