"""A registry entry as a provider's tool definition (Django-free apart from the model's fields)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from skills.schema import is_strict_schema

if TYPE_CHECKING:
    from skills.models import Skill


def to_openai_tool(skill: Skill) -> dict[str, Any]:
    """The Responses API / Agents SDK function tool (type, name, description, parameters, strict).

    `strict` is true only when the schema already satisfies OpenAI's strict mode, so the SDK
    never has to rewrite it (which would make optional parameters required).
    """
    parameters = copy.deepcopy(skill.parameters)
    return {
        "type": "function",
        "name": skill.name,
        "description": skill.description,
        "parameters": parameters,
        "strict": is_strict_schema(parameters),
    }


def to_anthropic_tool(skill: Skill) -> dict[str, Any]:
    """The Anthropic Messages API tool: {"name","description","input_schema"}."""
    return {
        "name": skill.name,
        "description": skill.description,
        "input_schema": copy.deepcopy(skill.parameters),
    }
