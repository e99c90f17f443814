"""A JSONField that can always be read back, however deeply its row was nested.

Before the API capped nesting (engramia_site.input_text.MAX_JSON_DEPTH), metadata and job
parameters hundreds of levels deep were stored. Python's JSON decoder recurses, so reading such
a row under the admin's deep call stack raised RecursionError and every page showing the row was
a 500. Such a row now reads as a copy truncated at the cap, with a marker where it was cut.
"""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

from django.db import models

from engramia_site.input_text import MAX_JSON_DEPTH

TRUNCATED = "(nested too deeply to show: truncated here)"


def truncated(value: Any, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """A copy of value whose objects and lists below max_depth levels are the TRUNCATED marker."""
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 0)]
    while stack:
        node, parent, key, depth = stack.pop()
        if not isinstance(node, dict | list):
            parent[key] = node
        elif depth > max_depth:
            parent[key] = TRUNCATED
        else:
            copy: Any = dict.fromkeys(node) if isinstance(node, dict) else [None] * len(node)
            parent[key] = copy
            items = node.items() if isinstance(node, dict) else enumerate(node)
            stack.extend((inner, copy, name, depth + 1) for name, inner in items)
    return root[0]


def _decode_on_a_fresh_stack(text: str, decoder: Any) -> Any:
    """json.loads in a new thread, whose recursion count starts at zero: deep rows decode."""
    decoded: list[Any] = [{"error": TRUNCATED}]

    def decode() -> None:
        # Deeper than even a fresh stack allows: only the marker is shown.
        with contextlib.suppress(RecursionError, ValueError):
            decoded[0] = json.loads(text, cls=decoder)

    thread = threading.Thread(target=decode, name="deep-json-decode")
    thread.start()
    thread.join()
    return decoded[0]


class DepthSafeJSONField(models.JSONField):
    """models.JSONField whose rows nested too deeply to decode read as a truncated copy.

    It deconstructs as models.JSONField: the column is the same, so no migration.
    """

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        try:
            return super().from_db_value(value, expression, connection)
        except RecursionError:
            return truncated(_decode_on_a_fresh_stack(value, self.decoder))

    def deconstruct(self) -> Any:
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.JSONField", args, kwargs
