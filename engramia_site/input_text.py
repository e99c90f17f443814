"""Text the database cannot store, found once where a request is read (Django-free).

PostgreSQL refuses U+0000 in text and jsonb, and a lone surrogate (JSON "\\ud800") is not
text at all: UTF-8 cannot encode it. Both used to surface as 500s deep inside a service; the
JSON and multipart parsers, the query/path check and the NDJSON reader refuse them instead,
naming the field by its dotted path. JSON nested deeper than MAX_JSON_DEPTH is refused there too,
so no free JSON field (metadata, schemas, session items) can hold what breaks recursive readers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_JSON_DEPTH = 32
# The codes DRF's CharField gives the same refusals, so clients see one code for each.
NUL_CHARACTER = "null_characters_not_allowed"
SURROGATE_CHARACTER = "surrogate_characters_not_allowed"
TOO_DEEP = "too_deep"

_BAD = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class InputProblem:
    """What is wrong with a piece of input, and where (None: the input as a whole)."""

    attr: str | None
    detail: str
    code: str


def text_problem(text: str, attr: str | None) -> InputProblem | None:
    """Why text cannot be stored, as a problem at attr, or None."""
    match = _BAD.search(text)
    if match is None:
        return None
    if match.group() == "\x00":
        detail = "Contains the null character U+0000, which cannot be stored."
        return InputProblem(attr, detail, NUL_CHARACTER)
    detail = f"Contains a lone surrogate U+{ord(match.group()):04X}, which is not valid text."
    return InputProblem(attr, detail, SURROGATE_CHARACTER)


def escaped(text: str) -> str:
    """text with every character that cannot be stored written as a \\uXXXX escape."""
    return _BAD.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _joined(path: str | None, step: Any) -> str:
    name = escaped(step) if isinstance(step, str) else str(step)
    return f"{path}.{name}" if path else name


def json_problem(
    data: Any, *, max_depth: int | None = MAX_JSON_DEPTH, prefix: str | None = None
) -> InputProblem | None:
    """The first string, key or nesting level in parsed JSON that cannot be accepted, or None.

    Iterative (the depth is untrusted). The top-level value is depth 0, so a field of a JSON
    body may nest max_depth levels; attr is the dotted path (list items by index).
    """
    stack: list[tuple[Any, str | None, int]] = [(data, prefix, 0)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, str):
            problem = text_problem(node, path)
            if problem:
                return problem
        elif isinstance(node, dict | list):
            if max_depth is not None and depth > max_depth:
                detail = f"Nested more than {max_depth} levels deep."
                return InputProblem(path, detail, TOO_DEEP)
            if isinstance(node, dict):
                for key in node:
                    problem = text_problem(str(key), _joined(path, str(key)))
                    if problem:
                        return problem
                children = [(value, _joined(path, key), depth + 1) for key, value in node.items()]
            else:
                children = [(value, _joined(path, i), depth + 1) for i, value in enumerate(node)]
            stack.extend(reversed(children))  # reversed: the first problem in reading order
    return None


def form_problem(fields: Any, files: Any = None) -> InputProblem | None:
    """The first form field (a QueryDict-like: name → several values) or file name to refuse."""
    for name in fields:
        problem = text_problem(str(name), escaped(str(name)))
        for value in fields.getlist(name):
            if problem is None and isinstance(value, str):
                problem = text_problem(value, str(name))
        if problem:
            return problem
    for name in files or ():
        for upload in files.getlist(name):
            problem = text_problem(f"{name}{upload.name or ''}", escaped(str(name)))
            if problem:
                return problem
    return None
