"""How a skill reads in the admin: its schema as a table, diffs between versions, its exports."""

from __future__ import annotations

import difflib
import json
from itertools import pairwise
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from engramia_site.highlight import highlighted_diff, highlighted_json
from skills.exports import to_anthropic_tool, to_openai_tool
from skills.models import Skill
from tenants.models import AuditEntry

VISIBILITY_HISTORY = 20


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type", "")
    if isinstance(kind, list):
        kind = " | ".join(str(k) for k in kind)
    if kind == "array" and isinstance(schema.get("items"), dict):
        return f"array of {_type_of(schema['items'])}"
    if "enum" in schema:
        return f"{kind or 'value'}: one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    return str(kind or "any")


def parameters_table(skill: Skill) -> SafeString:
    """The parameters schema as a table (name, type, required, description), then as JSON."""
    schema = skill.parameters or {}
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    rows = format_html_join(
        "",
        '<tr><td class="eng-mono">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
        (
            (
                name,
                _type_of(spec if isinstance(spec, dict) else {}),
                "required" if name in required else "optional",
                (spec or {}).get("description", "") if isinstance(spec, dict) else "",
            )
            for name, spec in properties.items()
        ),
    )
    table = (
        format_html(
            '<table class="eng-table mb-4" id="skill-parameters"><thead><tr><th>parameter</th>'
            "<th>type</th><th></th><th>description</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )
        if properties
        else format_html('<p class="eng-muted mb-4">{}</p>', "No parameters.")
    )
    return format_html("{}{}", table, highlighted_json(schema))


def _version_text(description: str, parameters: Any) -> list[str]:
    text = f"description: {description}\nparameters:\n{json.dumps(parameters, indent=2)}\n"
    return text.splitlines(keepends=True)


def version_diffs(skill: Skill) -> SafeString:
    """Each version against the one before it, newest first, as unified diffs."""
    versions = [
        (v.version, v.description, v.parameters) for v in skill.versions.order_by("version")
    ]
    versions = [row for row in versions if row[0] != skill.version]
    versions.append((skill.version, skill.description, skill.parameters))
    if len(versions) < 2:
        return format_html('<p class="eng-muted">{}</p>', "Only one version so far.")
    parts = []
    for before, after in pairwise(versions):
        diff = "".join(
            difflib.unified_diff(
                _version_text(before[1], before[2]),
                _version_text(after[1], after[2]),
                fromfile=f"version {before[0]}",
                tofile=f"version {after[0]}",
            )
        )
        parts.append((after[0], before[0], highlighted_diff(diff or "(no change)\n")))
    return format_html_join(
        "",
        '<div class="mb-4 skill-version-diff"><p class="font-semibold">version {} against {}</p>'
        "{}</div>",
        reversed(parts),
    )


def visibility_history(skill: Skill) -> SafeString:
    """Who changed the skill's visibility and when (its audit entries)."""
    entries = AuditEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Skill),
        object_pk=str(skill.pk),
        changes__has_key="visibility",
    ).order_by("-timestamp")[:VISIBILITY_HISTORY]
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{} → {}</td><td>{}</td></tr>",
        (
            (
                entry.timestamp.strftime("%Y-%m-%d %H:%M"),
                entry.changes_dict["visibility"][0],
                entry.changes_dict["visibility"][1],
                entry.actor_email or "system",
            )
            for entry in entries
        ),
    )
    if not rows:
        return format_html('<p class="eng-muted">{}</p>', "Never changed.")
    return format_html(
        '<table class="eng-table" id="skill-visibility-history"><thead><tr><th>when</th>'
        "<th>visibility</th><th>by</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


def openai_tool_json(skill: Skill) -> SafeString:
    """The OpenAI (Responses API / Agents SDK) function tool."""
    return highlighted_json(to_openai_tool(skill))


def anthropic_tool_json(skill: Skill) -> SafeString:
    """The Anthropic Messages API tool."""
    return highlighted_json(to_anthropic_tool(skill))
