"""Finding skills: filters over what a caller may see, and eval-weighted semantic search."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from retrieval.embeddings import get_embedder
from retrieval.ranking import Ranked, rank
from retrieval.search import cosine_distance, indexed_dimensions
from skills.choices import SearchScope
from skills.models import Skill
from skills.querysets import SkillQuerySet
from skills.schema import normalise_tags
from tenants.choices import Role
from tenants.models import Project

DEFAULT_LIMIT = 10
MAX_LIMIT = 50
# Ranking reorders by evaluation after the nearest neighbours are found; this many are fetched.
MIN_CANDIDATES = 50
CANDIDATES_PER_RESULT = 4


@dataclass(frozen=True)
class SkillMatch:
    """A skill found by a search; `ranked` is set when the search was semantic."""

    skill: Skill
    ranked: Ranked | None = None

    @property
    def similarity(self) -> float | None:
        return self.ranked.similarity if self.ranked else None

    @property
    def score(self) -> float | None:
        return self.ranked.score if self.ranked else None

    def explain(self) -> dict[str, Any] | None:
        """Each factor of the score, as pattern recall explains it, plus the eval evidence."""
        if self.ranked is None:
            return None
        return {
            **self.ranked.explain(),
            "eval_score": self.skill.eval_score,
            "evaluation_count": self.skill.evaluation_count,
            "embedding_model": self.skill.embedding_model,
        }


def visible_skills(project: Project) -> SkillQuerySet:
    """What a caller acting in project may read, ready for listing (vectors never loaded)."""
    return Skill.objects.visible_to(project).select_related("tenant", "project").defer("embedding")


def filter_skills(
    queryset: SkillQuerySet,
    *,
    project: Project,
    tags: Iterable[str] = (),
    name: str | None = None,
    scope: SearchScope | str = SearchScope.ALL,
) -> SkillQuerySet:
    """Narrow visible skills by scope, by tags (all must match) and by a name fragment."""
    queryset = queryset.in_scope(project, scope)
    wanted = normalise_tags(list(tags))
    if wanted:
        queryset = queryset.filter(tags__contains=wanted)
    if name:
        queryset = queryset.filter(name__icontains=name)
    return queryset


def search_skills(
    *,
    project: Project,
    user_role: Role | str | None,
    q: str | None = None,
    tags: Iterable[str] = (),
    name: str | None = None,
    scope: SearchScope | str = SearchScope.ALL,
    limit: int = DEFAULT_LIMIT,
    eval_weighted: bool = True,
) -> list[SkillMatch]:
    """Skills visible from project, best first: similarity times eval multiplier when q is given.

    Only vectors made by the project's own embedding model are compared with the query; skills
    embedded by another model are left out of semantic results rather than mis-ranked.
    """
    if user_role is None or not Role(user_role).covers(Role.READER):
        return []
    limit = max(1, min(MAX_LIMIT, int(limit)))
    queryset = filter_skills(
        visible_skills(project), project=project, tags=tags, name=name, scope=scope
    )
    if not q or not q.strip():
        return [SkillMatch(skill) for skill in queryset[:limit]]

    embedder = get_embedder(project.embedding_model)
    vector = embedder.embed_query(q.strip())
    # A scoped HNSW scan keeps going until the page is full: the connection's iterative scan
    # (retrieval.search.configure_connection).
    distance = cosine_distance(vector, indexed_dimensions(embedder.name))
    found = list(
        queryset.filter(embedding_model=embedder.name, embedding__isnull=False)
        .annotate(distance=distance)
        .order_by("distance", "id")[: max(MIN_CANDIDATES, limit * CANDIDATES_PER_RESULT)]
    )

    now = timezone.now()
    scored = [
        (
            rank(
                distance=skill.distance,
                eval_score=skill.eval_score,
                age_days=(now - skill.updated_at).total_seconds() / 86400.0,
                eval_weighted=eval_weighted,
            ),
            skill,
        )
        for skill in found
        if skill.distance is not None and not math.isnan(skill.distance)
    ]
    scored.sort(key=lambda pair: (-pair[0].score, -pair[0].similarity, pair[1].pk))
    return [SkillMatch(skill, ranked) for ranked, skill in scored[:limit]]


def query_skills(
    params: Mapping[str, Any], *, project: Project, user_role: Role | str | None
) -> tuple[str, list[SkillMatch]]:
    """A validated skills query (SkillQuerySerializer): its stripped `q`, and the best matches
    when there is one (without `q`, callers list `filter_query(...)` their own way)."""
    q = (params.get("q") or "").strip()
    if not q:
        return q, []
    matches = search_skills(
        project=project,
        user_role=user_role,
        q=q,
        tags=params.get("tags", []),
        name=params.get("name"),
        scope=params["scope"],
        limit=params["limit"],
        eval_weighted=params["eval_weighted"],
    )
    return q, matches


def filter_query(
    queryset: SkillQuerySet, params: Mapping[str, Any], *, project: Project
) -> SkillQuerySet:
    """filter_skills with a validated skills query's tags, name and scope."""
    return filter_skills(
        queryset,
        project=project,
        tags=params.get("tags", []),
        name=params.get("name"),
        scope=params["scope"],
    )
