"""The MCP tools: a name, prose for the model, the serializer that validates the arguments, the
role they need and the operation they perform.

Each tool calls the operation the API's endpoint calls (memory.operations, skills.services), so
limits, refusals and audit entries are the API's. A tool returns JSON; what it disclosed (which
patterns or skills) is summarised for the call's audit entry by `trace`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rest_framework import serializers

from engramia_mcp.principal import Principal
from engramia_mcp.schema import input_schema
from engramia_site.errors import NotFound
from jobs.operations import validate_input
from memory import inputs as memory_inputs
from memory import operations
from memory.models import Pattern
from memory.services.recall import Match
from skills.api.serializers import SkillQuerySerializer, SkillSerializer, ToolQuerySerializer
from skills.choices import ToolFormat
from skills.services import (
    SkillMatch,
    filter_query,
    query_skills,
    to_anthropic_tool,
    to_openai_tool,
    visible_skills,
)
from tenants.api.strict import StrictSerializer
from tenants.choices import Role

# Learned over MCP unless the caller names another source: provenance in recall and the admin.
MCP_SOURCE = "mcp"
# list_patterns shows this much of a pattern's task and code (recall returns them whole).
LIST_TEXT_CHARS = 2000


@dataclass(frozen=True)
class Tool:
    """One MCP tool and the operation behind it."""

    name: str
    title: str
    description: str
    input: type[serializers.Serializer]
    role: Role
    run: Callable[[Principal, dict[str, Any]], dict[str, Any]]
    descriptions: Mapping[str, str] = field(default_factory=dict)
    # The serializer fields offered to models (None: all of them).
    exposed: tuple[str, ...] | None = None
    # What the result disclosed, for the audit entry (ids, never content).
    trace: Callable[[dict[str, Any]], dict[str, Any]] = lambda body: {}
    destructive: bool = False

    @property
    def read_only(self) -> bool:
        return self.role == Role.READER

    @property
    def accepted(self) -> frozenset[str]:
        """Argument names this tool takes."""
        return frozenset(self.exposed or self.input().fields)

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the arguments, derived from the serializer."""
        return input_schema(self.input, self.descriptions, self.exposed)


class SkillRefSerializer(StrictSerializer, ToolQuerySerializer):
    """get_skill: a skill visible to the project, by id, in a provider's tool format."""

    skill_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


# -- memory -----------------------------------------------------------------------------------


def _match(match: Match) -> dict[str, Any]:
    body = {
        "pattern_id": match.pattern_id,
        "task": match.task,
        "code": match.code,
        "output": match.output,
        "score": match.score,
        "similarity": match.similarity,
        "eval_score": match.eval_score,
        "reuse_tier": match.reuse_tier,
        "source": match.source,
        "run_id": match.run_id,
        "created_at": match.created_at,
    }
    if match.explain is not None:
        body["explain"] = match.explain
    return body


def recall(principal: Principal, arguments: dict[str, Any]) -> dict[str, Any]:
    """The project's most useful patterns for a task."""
    result = operations.recall(project=principal.project, data=arguments)
    body: dict[str, Any] = {"matches": [_match(match) for match in result.matches]}
    if result.documents_searched:
        body["documents"] = [vars(match) for match in result.documents]
    return body


def learn(principal: Principal, arguments: dict[str, Any]) -> dict[str, Any]:
    """Store a solution that worked (deduplicated against the project's patterns)."""
    data = {"source": MCP_SOURCE, **arguments}
    outcome = operations.LEARN.run(project=principal.project, actor=principal.actor, data=data)
    return operations.LEARN.describe(outcome)


def evaluate(principal: Principal, arguments: dict[str, Any]) -> dict[str, Any]:
    """Have the project's LLM judge score a solution."""
    outcome = operations.EVALUATE.run(
        project=principal.project, actor=principal.actor, data=arguments
    )
    return operations.EVALUATE.describe(outcome)


def record_outcome(principal: Principal, arguments: dict[str, Any]) -> dict[str, Any]:
    """Credit the patterns a run used with the run's score."""
    credited = operations.credit_outcome(
        project=principal.project, actor=principal.actor, data=arguments
    )
    return {"credited": credited}


def _pattern_row(pattern: Pattern) -> dict[str, Any]:
    row: dict[str, Any] = {
        "pattern_id": pattern.pk,
        "task": pattern.task[:LIST_TEXT_CHARS],
        "code": pattern.code[:LIST_TEXT_CHARS],
        "eval_score": pattern.eval_score,
        "source": pattern.source,
        "run_id": pattern.run_id,
        "archived": pattern.archived,
        "created_at": pattern.created_at,
    }
    if len(pattern.task) > LIST_TEXT_CHARS or len(pattern.code) > LIST_TEXT_CHARS:
        row["truncated"] = True
    return row


def list_patterns(principal: Principal, arguments: dict[str, Any]) -> dict[str, Any]:
    """A page of the project's patterns, newest first."""
    page = operations.list_patterns(project=principal.project, data=arguments)
    body: dict[str, Any] = {"patterns": [_pattern_row(p) for p in page.patterns]}
    if page.has_more:
        body["next_offset"] = int(arguments.get("offset") or 0) + len(page.patterns)
    return body


def forget_pattern(principal: Principal, arguments: dict[str, Any]) -> dict[str, Any]:
    """Archive a pattern: recall stops returning it; it stays for curation and audit."""
    pattern = operations.archive_pattern(
        project=principal.project, actor=principal.actor, data=arguments
    )
    return {"pattern_id": pattern.pk, "archived": pattern.archived}


# -- skills -----------------------------------------------------------------------------------


def _skill(skill: Any, principal: Principal) -> dict[str, Any]:
    """A skill as the API shows it (the owner project is named only inside its own tenant)."""
    return dict(SkillSerializer(skill, context={"project": principal.project}).data)


def search_skills_tool(principal: Principal, arguments: dict[str, Any]) -> dict[str, Any]:
    """Skills the project may use, best first when a query is given."""
    params = validate_input(SkillQuerySerializer, arguments)
    q, matches = query_skills(params, project=principal.project, user_role=principal.role)
    found: list[tuple[Any, SkillMatch | None]]
    if q:
        found = [(match.skill, match) for match in matches]
    else:
        queryset = filter_query(
            visible_skills(principal.project), params, project=principal.project
        )
        found = [(skill, None) for skill in queryset.order_by("name", "id")[: params["limit"]]]
    results = []
    for skill, match in found:
        row = _skill(skill, principal)
        row.pop("parameters", None)  # get_skill returns the whole tool definition
        if match is not None:
            row["similarity"] = match.similarity
            row["score"] = match.score
            if params["explain"]:
                row["explain"] = match.explain()
        results.append(row)
    return {"skills": results}


def get_skill(principal: Principal, arguments: dict[str, Any]) -> dict[str, Any]:
    """One skill visible to the project, with its tool definition in a provider's format."""
    params = validate_input(SkillRefSerializer, arguments)
    skill = visible_skills(principal.project).filter(pk=params["skill_id"]).first()
    if skill is None:
        raise NotFound("Skill not found.")
    export = to_anthropic_tool if params["format"] == ToolFormat.ANTHROPIC else to_openai_tool
    return {"skill": _skill(skill, principal), "tool": export(skill)}


def _ids(key: str, rows: str, name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda body: {name: [row[key] for row in body.get(rows, [])]}


TOOLS: tuple[Tool, ...] = (
    Tool(
        name="recall",
        title="Recall patterns",
        description=(
            "Before you start a task, ask Engramia for solutions that worked on similar tasks in "
            "this project. Returns up to `limit` patterns, best first. `score` ranks them: the "
            "similarity of their task to yours times a multiplier from how well they were "
            "evaluated (eval_score 0-10; unevaluated patterns count as neutral). `reuse_tier` "
            "says how directly a pattern applies: 'duplicate' (reuse as is), 'adapt' (start "
            "from it) or 'fresh' (only loosely related). Remember the pattern_ids you use and "
            "report how the run went with record_outcome."
        ),
        input=memory_inputs.RecallSerializer,
        role=Role.READER,
        run=recall,
        descriptions={
            "task": "What you are about to do, in plain words (the task, not the solution).",
            "limit": "How many patterns to return.",
            "eval_weighted": "Rank well-evaluated patterns higher (default true).",
            "recency_weight": "0 ignores age; up to 1 favours recent patterns.",
            "min_similarity": "Leave out patterns less similar than this (0-1).",
            "source": "Only patterns from this source (e.g. 'mcp', 'api', 'import').",
            "explain": "Add each factor of the score to every match.",
            "include_documents": "Also search the project's documents; adds `documents`.",
        },
        trace=_ids("pattern_id", "matches", "pattern_ids"),
    ),
    Tool(
        name="learn",
        title="Learn a pattern",
        description=(
            "After a solution has worked, store it so later runs can recall it: the task, the "
            "solution (`code`: code, a command, a plan or a written answer) and optionally its "
            "output and your eval score (0-10, how good it was). Near-duplicates of a stored "
            "pattern are not stored twice (see `on_duplicate`). Never store secrets. Needs the "
            "editor role."
        ),
        input=memory_inputs.LearnSerializer,
        role=Role.EDITOR,
        run=learn,
        exposed=(
            "task",
            "code",
            "output",
            "eval_score",
            "source",
            "run_id",
            "metadata",
            "on_duplicate",
        ),
        descriptions={
            "task": "The task that was solved, in plain words.",
            "code": "The solution that worked: code, a command, a plan or a written answer.",
            "output": "What the solution produced (optional).",
            "eval_score": "How good the solution was, 0-10 (optional).",
            "source": "Where the pattern comes from (default 'mcp').",
            "run_id": "Your run or conversation id, to find the pattern again.",
            "metadata": "A small JSON object of your own (up to 64 KB).",
            "on_duplicate": (
                "When a near-duplicate exists: 'skip' (default), 'replace_with_better' or "
                "'keep_both'."
            ),
        },
        trace=lambda body: {"pattern_ids": [body["pattern_id"]] if body.get("pattern_id") else []},
    ),
    Tool(
        name="evaluate",
        title="Evaluate a solution",
        description=(
            "Ask the project's LLM judge to score a solution 0-10 (the median of `num_evals` "
            "independent judgements, with feedback). With `pattern_id` the score is recorded on "
            "that stored pattern and changes how it ranks. Needs the editor role and a judge "
            "configured on the server."
        ),
        input=memory_inputs.EvaluateSerializer,
        role=Role.EDITOR,
        run=evaluate,
        descriptions={
            "task": "The task the solution was for.",
            "code": "The solution to judge.",
            "output": "What the solution produced (optional).",
            "num_evals": "Independent judgements to take the median of.",
            "pattern_id": "A stored pattern to record the score on (optional).",
        },
        trace=lambda body: {"pattern_ids": [body["pattern_id"]] if body.get("pattern_id") else []},
    ),
    Tool(
        name="record_outcome",
        title="Record a run's outcome",
        description=(
            "After a run that used recalled patterns, report how it went: the pattern_ids you "
            "used and a score 0-10 for the result. Patterns that keep helping rank higher; ones "
            "that mislead sink. Needs the editor role."
        ),
        input=memory_inputs.OutcomeSerializer,
        role=Role.EDITOR,
        run=record_outcome,
        descriptions={
            "pattern_ids": "The ids of the recalled patterns the run used.",
            "score": "How well the run went, 0-10.",
            "feedback": "What went right or wrong (optional).",
        },
        trace=lambda body: {"credited": body.get("credited")},
    ),
    Tool(
        name="search_skills",
        title="Search skills",
        description=(
            "Find registered skills (tools other agents have defined) that this project may use: "
            "with `q`, the best matches for what you need, ranked by similarity and evaluation; "
            "without it, skills by name. Use get_skill for a skill's full tool definition."
        ),
        input=SkillQuerySerializer,
        role=Role.READER,
        run=search_skills_tool,
        descriptions={
            "q": "What the skill should do, in plain words.",
            "tags": "Only skills with all of these tags.",
            "name": "Only skills whose name contains this.",
            "scope": "Whose skills: this project's, this tenant's, public ones, or all.",
            "limit": "How many skills to return.",
            "explain": "Add each factor of the score to every result.",
            "eval_weighted": "Rank well-evaluated skills higher (default true).",
        },
        trace=_ids("id", "skills", "skill_ids"),
    ),
    Tool(
        name="get_skill",
        title="Get a skill",
        description=(
            "One skill by id (from search_skills), with its tool definition ready to hand to a "
            "model: the OpenAI function-tool format or Anthropic's."
        ),
        input=SkillRefSerializer,
        role=Role.READER,
        run=get_skill,
        descriptions={
            "skill_id": "The skill's id.",
            "format": "The tool definition's format: 'openai' (default) or 'anthropic'.",
        },
        trace=lambda body: {"skill_ids": [body["skill"]["id"]]},
    ),
    Tool(
        name="list_patterns",
        title="List patterns",
        description=(
            "Browse the project's stored patterns, newest first (recall finds the relevant "
            f"ones; this lists). Task and code are cut at {LIST_TEXT_CHARS} characters. "
            "`next_offset` is present when more follow."
        ),
        input=memory_inputs.PatternListSerializer,
        role=Role.READER,
        run=list_patterns,
        descriptions={
            "q": "Only patterns whose task contains this text.",
            "source": "Only patterns from this source.",
            "run_id": "Only patterns learned in this run.",
            "min_eval": "Only patterns evaluated at least this well (0-10).",
            "archived": "'false' (default): live patterns; 'true': archived; 'all'.",
            "limit": "How many patterns to return.",
            "offset": "Skip this many (use the previous page's next_offset).",
        },
        trace=_ids("pattern_id", "patterns", "pattern_ids"),
    ),
    Tool(
        name="forget_pattern",
        title="Forget a pattern",
        description=(
            "Archive a stored pattern that is wrong, outdated or harmful: recall stops "
            "returning it. It is kept (archived) for curation and audit, not deleted. Needs the "
            "editor role."
        ),
        input=memory_inputs.PatternRefSerializer,
        role=Role.EDITOR,
        run=forget_pattern,
        descriptions={"pattern_id": "The id of the pattern to archive."},
        trace=lambda body: {"pattern_ids": [body["pattern_id"]]},
        destructive=True,
    ),
)
TOOLS_BY_NAME: dict[str, Tool] = {tool.name: tool for tool in TOOLS}
