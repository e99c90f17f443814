"""The API's parsers: DRF's, refusing what the database cannot store with a 400 naming the field.

`json.loads` raises RecursionError (not ValueError) on a body nested about a thousand levels
deep, which DRF's JSONParser lets through as a 500. Strings with U+0000 or a lone surrogate, and
JSON nested deeper than MAX_JSON_DEPTH, are refused here once for every endpoint
(engramia_site.input_text).
"""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ErrorDetail, ParseError, ValidationError

from engramia_site.input_text import InputProblem, form_problem, json_problem


def refuse(problem: InputProblem) -> ValidationError:
    """The 400 for a problem found in the input: attr is its dotted path."""
    return ValidationError(
        {problem.attr or "non_field_errors": [ErrorDetail(problem.detail, code=problem.code)]}
    )


class JSONParser(parsers.JSONParser):
    """application/json; bad, too deeply nested or unstorable JSON is a 400."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - the body is nested too deeply.") from exc
        problem = json_problem(data)
        if problem:
            raise refuse(problem)
        return data


class MultiPartParser(parsers.MultiPartParser):
    """multipart/form-data; a field or file name the database cannot store is a 400."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        result = super().parse(stream, media_type, parser_context)
        problem = form_problem(result.data, result.files)
        if problem:
            raise refuse(problem)
        return result
