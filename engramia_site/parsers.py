"""The API's JSON parser: DRF's, with nesting too deep for Python's parser reported as a 400.

`json.loads` raises RecursionError (not ValueError) on a body nested about a thousand levels
deep, which DRF's JSONParser lets through as a 500.
"""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """application/json; bad or too deeply nested JSON is a ParseError (400)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - the body is nested too deeply.") from exc
