"""Pattern queries: scope first, then similarity."""

from __future__ import annotations

from tenants.querysets import ProjectScopedQuerySet


class PatternQuerySet(ProjectScopedQuerySet):
    """Patterns, scoped by project and role."""

    def live(self) -> PatternQuerySet:
        """Patterns that recall may return (not archived)."""
        return self.filter(archived=False)
