"""Read Assistants exports (NDJSON) and pair user questions with the answers that follow them.

Django-free. Besides Engramia's own export format it accepts the JSONL shapes of common
third-party exports that differ only in field names (`thread`/`conversation_id`,
`id`/`msg_id`, `content`/`message`, `timestamp`/`created`, ISO or epoch times).
Malformed lines are collected with their line numbers and never stop the rest.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from engramia_site.input_text import json_problem

MAX_LINE_BYTES = 4 * 1024 * 1024
MAX_REPORTED_ERRORS = 200

FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "thread_id": ("thread_id", "thread", "conversation_id", "conversation", "session_id"),
    "message_id": ("message_id", "id", "msg_id", "uuid"),
    "role": ("role", "author", "sender", "author_role"),
    "text": ("text", "content", "message", "body"),
    "created_at": ("created_at", "timestamp", "created", "create_time", "time"),
    "assistant_id": ("assistant_id", "assistant", "agent_id"),
}
ROLE_ALIASES = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "bot": "assistant",
    "model": "assistant",
}


@dataclass(frozen=True)
class Message:
    """One exported message."""

    line: int
    thread_id: str
    message_id: str
    role: str
    text: str
    created_at: float
    assistant_id: str
    attachments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pair:
    """A user message and the assistant reply that follows it: one future pattern."""

    thread_id: str
    assistant_id: str
    question: Message
    answers: tuple[Message, ...]

    @property
    def external_id(self) -> str:
        return f"openai-msg:{self.question.message_id}"

    @property
    def answer_text(self) -> str:
        return "\n\n".join(answer.text for answer in self.answers if answer.text)

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self.question.created_at, tz=UTC)

    @property
    def run_id(self) -> str:
        return f"openai-thread:{self.thread_id}"


@dataclass
class ParseReport:
    """What reading a file found: messages by thread, and the lines that could not be used."""

    messages: dict[str, list[Message]] = field(default_factory=lambda: defaultdict(list))
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    lines: int = 0

    def add_error(self, line: int, reason: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"line": line, "reason": reason})


def _first(record: dict[str, Any], name: str) -> Any:
    for alias in FIELD_ALIASES[name]:
        if alias in record and record[alias] is not None:
            return record[alias]
    return None


def _text_of(value: Any) -> str | None:
    """Plain text of a message body: a string, or the text parts of a content list."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for part in value:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, dict):
                    text = text.get("value")
                if isinstance(text, str):
                    parts.append(text)
        return "\n\n".join(parts)
    if isinstance(value, dict) and isinstance(value.get("parts"), list):
        return _text_of(value["parts"])
    return None


def _timestamp(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) / 1000.0 if value > 10**11 else float(value)  # milliseconds
    if isinstance(value, str):
        try:
            return _timestamp(float(value))
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return None


def parse_record(record: Any, line: int, default_assistant: str = "") -> Message | str:
    """A Message from one decoded line, or the reason it cannot be one."""
    if not isinstance(record, dict):
        return "not a JSON object"
    values = {name: _first(record, name) for name in FIELD_ALIASES}
    missing = [
        name
        for name in ("thread_id", "message_id", "role", "text", "created_at")
        if values[name] is None
    ]
    if missing:
        return f"missing field(s): {', '.join(missing)}"
    role = ROLE_ALIASES.get(str(values["role"]).strip().lower())
    if role is None:
        return f"unknown role {values['role']!r} (expected user or assistant)"
    text = _text_of(values["text"])
    if text is None:
        return "text is neither a string nor a list of text parts"
    created = _timestamp(values["created_at"])
    if created is None:
        return f"created_at {values['created_at']!r} is not epoch seconds or ISO 8601"
    attachments = record.get("attachments") or []
    if not isinstance(attachments, list):
        attachments = []
    return Message(
        line=line,
        thread_id=str(values["thread_id"]),
        message_id=str(values["message_id"]),
        role=role,
        text=text,
        created_at=created,
        assistant_id=str(values["assistant_id"] or default_assistant or ""),
        attachments=tuple(str(item) for item in attachments if isinstance(item, str)),
    )


def iter_lines(
    stream: IO[bytes], max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, bytes | None]]:
    """(line number, raw line) pairs; a line longer than the cap yields None (and is skipped)."""
    number = 0
    while True:
        number += 1
        chunk = stream.readline(max_line_bytes + 1)
        if not chunk:
            return
        if len(chunk) > max_line_bytes and not chunk.endswith(b"\n"):
            while chunk and not chunk.endswith(b"\n"):  # drain the rest of the oversized line
                chunk = stream.readline(1024 * 1024)
            yield number, None
            continue
        yield number, chunk


def read_export(stream: IO[bytes], *, default_assistant: str = "") -> ParseReport:
    """Parse an export, keeping every usable message and reporting every unusable line."""
    report = ParseReport()
    seen: set[tuple[str, str]] = set()
    for number, raw in iter_lines(stream):
        report.lines = number
        if raw is None:
            report.add_error(number, f"line longer than {MAX_LINE_BYTES} bytes")
            continue
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            report.add_error(number, f"not valid JSON ({str(exc)[:80]})")
            continue
        except RecursionError:
            report.add_error(number, "not valid JSON (nested too deeply)")
            continue
        problem = json_problem(record, max_depth=None)  # U+0000 and lone surrogates: unstorable
        if problem:
            where = problem.attr or "the line"
            report.add_error(number, f"{where}: {problem.detail[0].lower()}{problem.detail[1:-1]}")
            continue
        message = parse_record(record, number, default_assistant)
        if isinstance(message, str):
            report.add_error(number, message)
            continue
        key = (message.thread_id, message.message_id)
        if key in seen:
            continue  # the same message twice (an export appended after a crash)
        seen.add(key)
        report.messages[message.thread_id].append(message)
    return report


def pair_thread(messages: Iterable[Message]) -> tuple[list[Pair], int]:
    """Pair each user message with the assistant replies that follow it; count the unpaired."""
    ordered = sorted(messages, key=lambda m: (m.created_at, m.line))
    pairs: list[Pair] = []
    unpaired = 0
    question: Message | None = None
    answers: list[Message] = []

    def close() -> None:
        nonlocal unpaired
        if question is None:
            return
        usable = [a for a in answers if a.text.strip()]
        if question.text.strip() and usable:
            pairs.append(
                Pair(
                    question.thread_id,
                    usable[0].assistant_id or question.assistant_id,
                    question,
                    tuple(usable),
                )
            )
        else:
            unpaired += 1

    for message in ordered:
        if message.role == "user":
            if question is not None and not answers:
                question = _merge(question, message)  # a user turn sent in several messages
                continue
            close()
            question, answers = message, []
        elif question is None:
            unpaired += 1  # an assistant message with no question before it
        else:
            answers.append(message)
    close()
    return pairs, unpaired


def _merge(first: Message, second: Message) -> Message:
    """One question from consecutive user messages: texts joined, attachments combined."""
    text = "\n\n".join(part for part in (first.text, second.text) if part)
    return Message(
        line=first.line,
        thread_id=first.thread_id,
        message_id=first.message_id,
        role="user",
        text=text,
        created_at=first.created_at,
        assistant_id=first.assistant_id,
        attachments=first.attachments
        + tuple(a for a in second.attachments if a not in first.attachments),
    )
