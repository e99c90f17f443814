"""Import an Assistants export into patterns (and assistant definitions into the project).

Idempotent: every pattern's external_id comes from the user message id, so re-running an
import, or resuming one that died, stores nothing twice.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from assistants.ndjson import Message as ExportedMessage
from assistants.ndjson import Pair, pair_thread, read_export
from engramia_site.errors import InvalidInput, PermissionDenied
from engramia_site.request_context import audited
from memory.models import Pattern
from memory.services import LearnItem, add_document, learn_patterns_bulk
from retrieval.ranking import NEUTRAL_SCORE
from tenants.choices import Role
from tenants.models import ApiKey, Project
from tenants.roles import tenant_role
from tenants.services import cap_by_key, ensure_project

GROUP_BY = ("assistant", "thread", "none")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


class ImportOptionsError(InvalidInput):
    """An import that cannot run (bad options); the message is meant for the user."""


class ImportNotAllowed(PermissionDenied):
    """The key may not import this way (grouping into other projects); meant for the user."""


GROUPING_REFUSED = (
    "group_by={group_by} writes into other projects of the tenant, named by ids in the export: "
    "it needs a tenant-wide key with the admin role of a user who is admin of the whole tenant. "
    "{reason}"
)


def authorize_grouping(*, api_key: ApiKey | None, project: Project, group_by: str) -> None:
    """Refuse group_by other than none unless api_key is a tenant-wide admin key of a tenant admin.

    A project key imports into its own project only. api_key None is the server operator (the
    assistants_import command), who may group.
    """
    if group_by == "none" or api_key is None:
        return
    reason = ""
    if not api_key.is_active or not api_key.user.is_active:
        reason = "The key that queued this import is no longer active."
    elif api_key.tenant_id != project.tenant_id or api_key.project_id is not None:
        reason = "This key is bound to one project; import with group_by=none."
    else:
        held = cap_by_key(api_key, tenant_role(api_key.user, api_key.tenant_id))
        if held is None or not held.covers(Role.ADMIN):
            reason = f"This key acts on the tenant as {held.value if held else 'nothing'}."
    if reason:
        raise ImportNotAllowed(GROUPING_REFUSED.format(group_by=group_by, reason=reason))


@dataclass
class ImportSummary:
    """What an import did (or, dry, would do)."""

    threads: int = 0
    pairs: int = 0
    imported: int = 0
    skipped: int = 0
    errors: int = 0
    unpaired: int = 0
    patterns_per_second: float = 0.0
    # Threads and messages restored under their OpenAI ids (/openai/v1 serves them).
    threads_restored: int = 0
    messages_restored: int = 0
    dry_run: bool = False
    projects: list[str] = field(default_factory=list)
    error_lines: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def slug_for(identifier: str) -> str:
    """A project slug derived from an assistant or thread id (asst_AbC → asst-abc)."""
    slug = _NOT_SLUG.sub("-", identifier.lower()).strip("-")[:64].strip("-")
    return slug or "unnamed"


def group_key(pair: Pair, group_by: str) -> str:
    """The assistant or thread id a pair is grouped by ("" when everything goes to one project)."""
    if group_by == "assistant":
        return pair.assistant_id
    return pair.thread_id if group_by == "thread" else ""


def target_project(base: Project, pair: Pair, group_by: str, *, actor: Any) -> Project:
    """The project a pair belongs to under the grouping (same tenant as base; made if missing)."""
    key = group_key(pair, group_by)
    return _project_in_tenant(base, slug_for(key), actor=actor) if key else base


def _project_in_tenant(base: Project, slug: str, *, actor: Any) -> Project:
    project = ensure_project(base.tenant.slug, slug, actor=actor)
    if project.embedding_model != base.embedding_model and not project.patterns.exists():
        project.embedding_model = base.embedding_model  # new projects follow the base's model
        project.save(update_fields=["embedding_model"])
    return project


def _learn_item(pair: Pair, eval_score: float) -> LearnItem:
    return LearnItem(
        task=pair.question.text,
        code=pair.answer_text,
        external_id=pair.external_id,
        run_id=pair.run_id,
        created_at=pair.created_at,
        eval_score=eval_score,
        metadata={
            "thread_id": pair.thread_id,
            "assistant_id": pair.assistant_id,
            "user_message_id": pair.question.message_id,
            "assistant_message_ids": [answer.message_id for answer in pair.answers],
            "attachments": sorted(
                {a for m in (pair.question, *pair.answers) for a in m.attachments}
            ),
        },
    )


def collect_pairs(stream: IO[bytes]) -> tuple[list[Pair], ImportSummary]:
    """Read and pair an export, counting threads, pairs, unpaired messages and bad lines."""
    pairs, summary, _ = _read_pairs(stream)
    return pairs, summary


def _read_pairs(
    stream: IO[bytes],
) -> tuple[list[Pair], ImportSummary, dict[str, list[ExportedMessage]]]:
    report = read_export(stream)
    summary = ImportSummary(
        threads=len(report.messages), errors=report.error_count, error_lines=report.errors
    )
    pairs: list[Pair] = []
    for messages in report.messages.values():
        thread_pairs, unpaired = pair_thread(messages)
        pairs.extend(thread_pairs)
        summary.unpaired += unpaired
    summary.pairs = len(pairs)
    return pairs, summary, report.messages


@audited
def import_assistants_export(
    *,
    project: Project,
    stream: IO[bytes],
    group_by: str = "none",
    eval_score: float = NEUTRAL_SCORE,
    dry_run: bool = False,
    actor: Any,
    api_key: ApiKey | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportSummary:
    """Pair an export's messages and learn them as patterns under the chosen grouping.

    api_key is the key the import runs under (API and jobs; see authorize_grouping).
    """
    if group_by not in GROUP_BY:
        raise ImportOptionsError(f"group_by must be one of {', '.join(GROUP_BY)}")
    authorize_grouping(api_key=api_key, project=project, group_by=group_by)
    if not 0.0 <= float(eval_score) <= 10.0:
        raise ImportOptionsError("eval_score must be between 0 and 10")
    started = time.monotonic()
    pairs, summary, threads = _read_pairs(stream)
    summary.dry_run = dry_run
    by_project: dict[str, tuple[Project, list[Pair]]] = {}
    resolve = dry_target if dry_run else functools.partial(target_project, actor=actor)
    for pair in pairs:
        key = group_key(pair, group_by)
        if key not in by_project:
            by_project[key] = (resolve(project, pair, group_by), [])
        by_project[key][1].append(pair)
    done = 0
    for target, project_pairs in by_project.values():
        summary.projects.append(target.path)
        if dry_run:
            fresh = _not_yet_imported(target, project_pairs)
            summary.imported += fresh
            summary.skipped += len(project_pairs) - fresh
            continue

        def report(batch_done: int, batch_total: int, offset: int = done) -> None:
            if progress is not None:
                progress(offset + batch_done, len(pairs))

        result = learn_patterns_bulk(
            project=target,
            items=[_learn_item(pair, eval_score) for pair in project_pairs],
            actor=actor,
            progress=report,
        )
        summary.imported += result.imported
        summary.skipped += result.skipped
        done += len(project_pairs)
    _restore_threads(project, threads, group_by, summary, actor=actor)
    elapsed = max(time.monotonic() - started, 1e-6)
    summary.patterns_per_second = round(
        (summary.imported if not dry_run else summary.pairs) / elapsed, 1
    )
    summary.projects.sort()
    return summary


def thread_group_key(messages: list[ExportedMessage], group_by: str) -> str:
    """The assistant or thread id a whole thread is grouped by ("" for one project)."""
    if group_by == "thread":
        return messages[0].thread_id
    if group_by == "assistant":
        answering = [m.assistant_id for m in messages if m.role == "assistant" and m.assistant_id]
        return (answering or [messages[0].assistant_id])[0]
    return ""


def _restore_threads(
    base: Project,
    threads: dict[str, list[ExportedMessage]],
    group_by: str,
    summary: ImportSummary,
    *,
    actor: Any,
) -> None:
    """Restore each thread under its OpenAI id, in the project its grouping puts it in."""
    from assistants.openai.services.restore import missing_messages, restore_thread

    for thread_id, messages in threads.items():
        key = thread_group_key(messages, group_by)
        if summary.dry_run:
            target = dry_target_for(base, key)
            added = missing_messages(target, thread_id, messages) if target.pk else len(messages)
        else:
            target = _project_in_tenant(base, slug_for(key), actor=actor) if key else base
            added = restore_thread(
                project=target, thread_id=thread_id, messages=messages, actor=actor
            )
        summary.messages_restored += added
        summary.threads_restored += 1 if added else 0


def dry_target_for(base: Project, key: str) -> Project:
    """The project a group key would go to, without creating it."""
    if not key:
        return base
    slug = slug_for(key)
    existing = (
        Project.objects.select_related("tenant").filter(tenant=base.tenant, slug=slug).first()
    )
    return existing or Project(tenant=base.tenant, slug=slug, name=slug)


def _not_yet_imported(target: Project, pairs: list[Pair]) -> int:
    """How many of the pairs a real import would store in target (a dry run's count)."""
    if target.pk is None:
        return len({pair.external_id for pair in pairs})
    known = set(
        Pattern.objects.for_project(target)
        .filter(external_id__in=[pair.external_id for pair in pairs])
        .values_list("external_id", flat=True)
    )
    return len({pair.external_id for pair in pairs} - known)


def dry_target(base: Project, pair: Pair, group_by: str) -> Project:
    """The project a pair would go to, without creating it."""
    return dry_target_for(base, group_key(pair, group_by))


@dataclass
class DefinitionsSummary:
    """What importing assistant definitions did."""

    assistants: int = 0
    assistants_restored: int = 0
    skills: int = 0
    documents: int = 0
    projects: list[str] = field(default_factory=list)


@audited
def import_assistant_definitions(
    *,
    project: Project,
    assistants: list[dict[str, Any]],
    group_by: str = "none",
    files_dir: Path | None = None,
    actor: Any,
) -> DefinitionsSummary:
    """Instructions onto the project, function tools into skills, files into documents."""
    from assistants.openai.services.restore import restore_assistant
    from skills.services import register_function_tools

    summary = DefinitionsSummary(assistants=len(assistants))
    for definition in assistants:
        if not isinstance(definition, dict):
            continue
        target = project
        if group_by == "assistant" and definition.get("id"):
            target = _project_in_tenant(project, slug_for(str(definition["id"])), actor=actor)
        instructions = definition.get("instructions") or ""
        if instructions and target.instructions != instructions:
            target.instructions = instructions
            target.save(update_fields=["instructions"])
        tools = [_v2_tool(tool) for tool in definition.get("tools") or [] if isinstance(tool, dict)]
        summary.skills += len(register_function_tools(project=target, tools=tools, actor=actor))
        if restore_assistant(project=target, definition=definition, actor=actor):
            summary.assistants_restored += 1
        if target.path not in summary.projects:
            summary.projects.append(target.path)
    if files_dir is not None:
        for path in sorted(p for p in Path(files_dir).iterdir() if p.is_file()):
            text = path.read_text(encoding="utf-8", errors="replace")
            if not text.strip():
                continue
            add_document(
                project=project,
                name=path.name,
                text=text,
                content_type="text/markdown"
                if path.suffix in (".md", ".markdown")
                else "text/plain",
                external_id=f"openai-file:{path.name}",
                actor=actor,
            )
            summary.documents += 1
    return summary


def _v2_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """A tool of the export (function fields at the top) in the v2 shape skills expect."""
    if tool.get("type") != "function" or isinstance(tool.get("function"), dict):
        return tool
    fields = {name: tool[name] for name in ("name", "description", "parameters") if name in tool}
    return {"type": "function", "function": fields}
