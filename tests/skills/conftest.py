"""Skills owned across two tenants, for the visibility and search suites.

Tenant A ("acme") has the personas' project "support" and a sibling project "billing"; tenant B
("globex") has "research". Each project owns one skill of each visibility.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

SEARCH_TICKETS_PARAMETERS = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "description": "Words to look for."},
        "limit": {"type": "integer", "minimum": 1, "maximum": 50},
    },
    "required": ["query"],
}


@pytest.fixture
def project_billing(project_a: Any) -> Any:
    from tenants.services import ensure_project

    return ensure_project("acme", "billing", actor=None)


@pytest.fixture
def make_skill(db: Any) -> Callable[..., Any]:
    """Register a skill through the real service (so it is embedded and versioned)."""
    from skills.services import register_skill

    def make(project: Any, name: str, *, actor: Any = None, **fields: Any) -> Any:
        fields.setdefault("description", f"The {name.replace('_', ' ')} skill.")
        return register_skill(actor=actor, project=project, name=name, **fields)

    return make


@pytest.fixture
def skills_everywhere(
    make_skill: Callable[..., Any], project_a: Any, project_billing: Any, project_b: Any
) -> dict[str, Any]:
    """One skill per (project, visibility), keyed like 'support_project' or 'research_public'."""
    skills = {}
    for project in (project_a, project_billing, project_b):
        for visibility in ("project", "tenant", "public"):
            key = f"{project.slug}_{visibility}"
            skills[key] = make_skill(project, key, visibility=visibility)
    return skills
