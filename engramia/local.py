"""Local mode: the same service functions the API calls, in this process, audited as the SDK.

Importing this module does not touch Django; the first call configures it from the environment
(DJANGO_SETTINGS_MODULE, default engramia_site.settings: ENGRAMIA_DATABASE_URL or the embedded
server, providers), checks the database, and creates the tenant and project if they are missing.

The ORM is synchronous and its connections are per thread. Async twins run calls in worker
threads; a worker thread closes its connection after each call so no thread holds one forever.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from engramia.config import Scope
from engramia.errors import (
    EngramiaConfigError,
    EngramiaJudgeNotConfiguredError,
    EngramiaNotFoundError,
    EngramiaServiceUnavailableError,
    validation_error,
)
from engramia.types import EvalResult, FeedbackItem, LearnResult, Match, parse_timestamp

logger = logging.getLogger("engramia")

DEFAULT_SETTINGS_MODULE = "engramia_site.settings"
# The API's limits (memory.api.serializers), so both modes accept and refuse the same input.
MAX_TASK = 100_000
MAX_RECALL_TASK = 20_000
MAX_CODE = 1_000_000
MAX_METADATA_BYTES = 64 * 1024
MAX_OUTCOME_PATTERNS = 100
SOURCE_RE = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")
ON_DUPLICATE = ("skip", "replace_with_better", "keep_both")
# Operations that never write (they may read from a replica).
READ_OPERATIONS = frozenset({"project", "recall", "feedback", "session_get"})

_setup_lock = threading.Lock()
_database_checked = False


def _embedded_database() -> bool:
    return not os.environ.get("ENGRAMIA_DATABASE_URL", "").strip()


def configure_django(settings_module: str | None = None, migrate: bool | None = None) -> None:
    """Set Django up once per process and make sure the database can serve Engramia."""
    global _database_checked
    with _setup_lock:
        import django
        from django.apps import apps

        if not apps.ready:
            os.environ.setdefault(
                "DJANGO_SETTINGS_MODULE", settings_module or DEFAULT_SETTINGS_MODULE
            )
            try:
                django.setup()
            except Exception as exc:
                raise EngramiaConfigError(
                    f"cannot configure Engramia from the environment "
                    f"(DJANGO_SETTINGS_MODULE={os.environ['DJANGO_SETTINGS_MODULE']}): {exc}"
                ) from exc
        if not (apps.is_installed("memory") and apps.is_installed("tenants")):
            raise EngramiaConfigError(
                f"the Django settings {os.environ.get('DJANGO_SETTINGS_MODULE')!r} do not install "
                "Engramia's apps; use engramia_site.settings (the default)"
            )
        if not _database_checked:
            _check_database(migrate)
            _database_checked = True


def _check_database(migrate: bool | None) -> None:
    """pgvector present and every migration applied (applied here for the embedded database)."""
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from engramia_site.database_check import DatabaseNotReady, verify_database

    try:
        verify_database()
    except DatabaseNotReady as exc:
        raise EngramiaConfigError(f"the database is not ready: {exc}") from exc
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if not pending:
        return
    if migrate is None:
        # The embedded database is this machine's private store, like `make run` would do.
        migrate = _embedded_database()
    if not migrate:
        raise EngramiaConfigError(
            f"the database has {len(pending)} unapplied migrations: run `engramia migrate` "
            "(or pass Memory(migrate=True))"
        )
    logger.info("applying %d migrations to the local database", len(pending))
    call_command("migrate", interactive=False, verbosity=0)


def _release_thread_connections() -> None:
    """Close this worker thread's database connections (unless a transaction is open)."""
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers)
        return str(os.getuid())


# -- validation: the API serializers' rules, without the API ------------------------------


def _text(
    payload: dict[str, Any], name: str, limit: int, *, blank: bool = False, trim: bool = True
) -> str:
    """A string field as DRF's CharField reads it (trimmed unless trim=False)."""
    value = payload.get(name)
    if value is None:
        raise validation_error(name, "This field is required.", "required")
    if not isinstance(value, str):
        raise validation_error(name, "Not a valid string.")
    if trim:
        value = value.strip()
    if not blank and value == "":
        raise validation_error(name, "This field may not be blank.", "blank")
    if len(value) > limit:
        raise validation_error(
            name, f"Ensure this field has no more than {limit} characters.", "max_length"
        )
    return value


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if value < low:
        raise validation_error(
            name, f"Ensure this value is greater than or equal to {low:g}.", "min_value"
        )
    if value > high:
        raise validation_error(
            name, f"Ensure this value is less than or equal to {high:g}.", "max_value"
        )


def _number(payload: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise validation_error(name, "A valid number is required.")
    _check_range(name, float(value), low, high)
    return float(value)


def _integer(payload: dict[str, Any], name: str, low: int, high: int) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise validation_error(name, "A valid integer is required.")
    _check_range(name, value, low, high)
    return value


def _source(payload: dict[str, Any], name: str = "source") -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not SOURCE_RE.match(value):
        raise validation_error(
            name,
            "Use 1-64 lowercase letters, digits and _ . : - (starting with a letter or digit).",
        )
    return value


class LocalBackend:
    """Runs Memory operations through Engramia's services against the configured database."""

    mode = "local"

    def __init__(
        self,
        scope: Scope,
        *,
        actor: Any = None,
        settings_module: str | None = None,
        migrate: bool | None = None,
    ) -> None:
        self.scope = scope
        self._actor_spec = actor
        self._settings_module = settings_module
        self._migrate = migrate
        self._lock = threading.Lock()
        self._ready = False
        self._actor: Any = None
        self._label = f"sdk:{_os_user()}"
        self._project_pk: int | None = None

    def describe(self) -> str:
        return f"local {self.scope.path}"

    # -- lifecycle -------------------------------------------------------------------------

    def _ensure_ready(self) -> None:
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            configure_django(self._settings_module, self._migrate)
            self._actor = self._resolve_actor()
            self._ready = True

    def _resolve_actor(self) -> Any:
        """The user the audit log names: actor=, else ENGRAMIA_ACTOR; None means the label."""
        spec = self._actor_spec
        if spec is None:
            spec = os.environ.get("ENGRAMIA_ACTOR", "").strip() or None
        if spec is None:
            return None
        if getattr(spec, "pk", None) is not None:
            return spec
        from django.contrib.auth import get_user_model

        users = get_user_model().objects
        user = (
            users.filter(email__iexact=str(spec)).first()
            or users.filter(username=str(spec)).first()
        )
        if user is None:
            raise EngramiaConfigError(
                f"actor {spec!r} (actor= or ENGRAMIA_ACTOR) names no Engramia user"
            )
        return user

    def _project(self) -> Any:
        """The scope's project, created (and audited) when missing."""
        from tenants.models import Project
        from tenants.services import ScopeError, ensure_project

        if self._project_pk is not None:
            project = Project.objects.select_related("tenant").filter(pk=self._project_pk).first()
            if project is not None:
                return project
        try:
            project = ensure_project(self.scope.tenant, self.scope.project)
        except ScopeError as exc:
            raise EngramiaConfigError(str(exc)) from exc
        self._project_pk = project.pk
        return project

    def close(self) -> None:
        """Nothing to release: connections belong to threads (see module docstring)."""

    async def aclose(self) -> None:
        """Nothing to release."""

    # -- calls -----------------------------------------------------------------------------

    def call(self, operation: str, payload: dict[str, Any]) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            # A sync call from async code: the ORM refuses to run on a loop's thread, so run
            # it on a helper thread (this blocks the loop; async code should use the a* twins).
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="engramia-sync") as pool:
                return pool.submit(self._call_in_worker, operation, payload).result()
        if threading.current_thread() is not threading.main_thread():
            return self._call_in_worker(operation, payload)
        return self._call(operation, payload)

    async def acall(self, operation: str, payload: dict[str, Any]) -> Any:
        return await asyncio.to_thread(self._call_in_worker, operation, payload)

    def _call_in_worker(self, operation: str, payload: dict[str, Any]) -> Any:
        try:
            return self._call(operation, payload)
        finally:
            if self._ready:
                _release_thread_connections()

    def _call(self, operation: str, payload: dict[str, Any]) -> Any:
        handler: Callable[[Any, dict[str, Any]], Any] | None = getattr(
            self, f"_op_{operation}", None
        )
        if handler is None:
            raise EngramiaConfigError(f"unknown operation {operation!r}")
        self._ensure_ready()
        from django.db import close_old_connections, connection

        from engramia_site.replica_pinning import process_principal, routed_call
        from engramia_site.request_context import acting_as

        if not connection.in_atomic_block:
            close_old_connections()  # drop a connection the server closed or that is too old
        # With read replicas, reads go to one unless this process wrote lately (then to the
        # primary, so it reads its own writes).
        read_only = operation in READ_OPERATIONS
        with (
            acting_as(self._actor, label=self._label),
            routed_call(process_principal(), read_only=read_only),
        ):
            return handler(self._project(), payload)

    # -- memory operations ----------------------------------------------------------------

    def _op_project(self, project: Any, payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "tenant": project.tenant.slug,
            "slug": project.slug,
            "name": project.name,
            "read_path": project.read_path,
            "embedding_model": project.embedding_model,
        }

    def _op_learn(self, project: Any, payload: dict[str, Any]) -> LearnResult:
        from memory.providers.embeddings import EmbeddingError
        from memory.services import learn_pattern

        # Learned text is kept as given (whitespace is part of code), as the API does.
        task = _text(payload, "task", MAX_TASK, trim=False)
        if not task.strip():
            raise validation_error("task", "The task is blank.", "blank")
        code = _text(payload, "code", MAX_CODE, trim=False)
        output = payload.get("output")
        if output is not None and not isinstance(output, str):
            raise validation_error("output", "Not a valid string.")
        eval_score = _number(payload, "eval_score", 0, 10)
        source = _source(payload) or "sdk"
        run_id = payload.get("run_id") or ""
        if not isinstance(run_id, str) or len(run_id) > 255:
            raise validation_error("run_id", "A string of at most 255 characters.")
        external_id = payload.get("external_id")
        if external_id is not None and (not isinstance(external_id, str) or len(external_id) > 255):
            raise validation_error("external_id", "A string of at most 255 characters.")
        try:
            created_at = parse_timestamp(payload.get("created_at"))
        except (ValueError, OverflowError, OSError):
            raise validation_error(
                "created_at", "Use an ISO 8601 date-time or epoch seconds."
            ) from None
        metadata = payload.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise validation_error("metadata", "Expected a JSON object.")
        if len(json.dumps(metadata, default=str)) > MAX_METADATA_BYTES:
            raise validation_error(
                "metadata", f"metadata exceeds {MAX_METADATA_BYTES} bytes.", "too_large"
            )
        on_duplicate = payload.get("on_duplicate") or "skip"
        if on_duplicate not in ON_DUPLICATE:
            raise validation_error(
                "on_duplicate", f'"{on_duplicate}" is not a valid choice.', "invalid_choice"
            )
        try:
            result = learn_pattern(
                project=project,
                actor=self._actor,
                task=task,
                code=code,
                output=output or "",
                eval_score=eval_score,
                source=source,
                run_id=run_id,
                external_id=external_id or None,
                created_at=created_at,
                metadata=metadata,
                on_duplicate=on_duplicate,
            )
        except EmbeddingError as exc:
            raise _unavailable(f"The embedding provider failed: {exc}") from exc
        return LearnResult(
            pattern_id=result.pattern_id,
            stored=result.stored,
            duplicate_of=result.duplicate_of,
            replaced=result.replaced,
        )

    def _op_recall(self, project: Any, payload: dict[str, Any]) -> list[Match]:
        from memory.providers.embeddings import EmbeddingError
        from memory.services import recall_patterns

        task = _text(payload, "task", MAX_RECALL_TASK)
        limit = _integer(payload, "limit", 1, 50)
        recency_weight = _number(payload, "recency_weight", 0, 1) or 0.0
        min_similarity = _number(payload, "min_similarity", 0, 1)
        try:
            result = recall_patterns(
                project=project,
                task=task,
                limit=limit,
                eval_weighted=bool(payload.get("eval_weighted", True)),
                recency_weight=recency_weight,
                min_similarity=min_similarity,
                source=_source(payload),
                explain=bool(payload.get("explain", False)),
            )
        except EmbeddingError as exc:
            raise _unavailable(f"The embedding provider failed: {exc}") from exc
        return [
            Match(
                pattern_id=match.pattern_id,
                task=match.task,
                code=match.code,
                output=match.output,
                similarity=match.similarity,
                eval_score=match.eval_score,
                score=match.score,
                reuse_tier=match.reuse_tier,
                source=match.source,
                run_id=match.run_id,
                created_at=match.created_at,
                explain=match.explain,
            )
            for match in result.matches
        ]

    def _op_evaluate(self, project: Any, payload: dict[str, Any]) -> EvalResult:
        from memory.models import Pattern
        from memory.providers.llm import LLMError, LLMNotConfigured
        from memory.services import evaluate_with_judge

        task = _text(payload, "task", MAX_TASK)
        code = _text(payload, "code", MAX_CODE)
        output = payload.get("output")
        if output is not None and not isinstance(output, str):
            raise validation_error("output", "Not a valid string.")
        num_evals = _integer(payload, "num_evals", 1, 5)
        pattern = None
        if payload.get("pattern_id") is not None:
            pattern_id = _integer(payload, "pattern_id", 1, 2**63 - 1)
            pattern = Pattern.objects.for_project(project).filter(pk=pattern_id).first()
            if pattern is None:
                raise validation_error("pattern_id", "No such pattern in this project.")
        try:
            result = evaluate_with_judge(
                project=project,
                task=task,
                code=code,
                output=output,
                num_evals=num_evals,
                pattern=pattern,
                actor=self._actor,
            )
        except LLMNotConfigured as exc:
            raise EngramiaJudgeNotConfiguredError(
                f"HTTP 503: No LLM judge is configured: {exc}",
                status=503,
                type="server_error",
                errors=[
                    {
                        "code": "service_unavailable",
                        "attr": None,
                        "detail": f"No LLM judge is configured: {exc}",
                    }
                ],
            ) from exc
        except LLMError as exc:
            raise _unavailable(f"The LLM judge failed: {exc}") from exc
        return EvalResult(
            median_score=result.median_score,
            scores=list(result.scores),
            spread=result.spread,
            feedback=result.feedback,
            evaluator=result.evaluator,
            pattern_id=pattern.pk if pattern is not None else None,
        )

    def _op_feedback(self, project: Any, payload: dict[str, Any]) -> list[FeedbackItem]:
        from memory.services import feedback_summary

        limit = _integer(payload, "limit", 1, 100)
        return [
            FeedbackItem(feedback=row["feedback"], count=row["count"], last_seen=row["last_seen"])
            for row in feedback_summary(project, limit=limit)
        ]

    def _op_delete_pattern(self, project: Any, payload: dict[str, Any]) -> None:
        from memory.models import Pattern
        from memory.services import delete_pattern

        pattern_id = _integer(payload, "pattern_id", 1, 2**63 - 1)
        pattern = Pattern.objects.for_project(project).filter(pk=pattern_id).first()
        if pattern is None:
            raise EngramiaNotFoundError(
                f"HTTP 404: pattern {pattern_id} does not exist in {self.scope.path}",
                status=404,
                errors=[{"code": "not_found", "detail": "Not found.", "attr": None}],
            )
        delete_pattern(pattern=pattern, actor=self._actor)

    def _op_record_outcome(self, project: Any, payload: dict[str, Any]) -> int:
        from memory.services import record_outcome

        pattern_ids = payload.get("pattern_ids")
        if not isinstance(pattern_ids, list) or not all(
            isinstance(item, int) and not isinstance(item, bool) for item in pattern_ids
        ):
            raise validation_error("pattern_ids", "A list of integers is required.")
        if len(pattern_ids) > MAX_OUTCOME_PATTERNS:
            raise validation_error(
                "pattern_ids",
                f"Ensure this field has no more than {MAX_OUTCOME_PATTERNS} elements.",
                "max_length",
            )
        score = _number(payload, "score", 0, 10)
        if score is None:
            raise validation_error("score", "This field is required.", "required")
        feedback = _text(payload, "feedback", 10_000, blank=True)
        return record_outcome(
            project=project,
            pattern_ids=pattern_ids,
            score=score,
            feedback=feedback,
            actor=self._actor,
        )

    # -- sessions (the Agents SDK Session protocol) ---------------------------------------

    def _session_id(self, payload: dict[str, Any]) -> str:
        from conversations.services import MAX_SESSION_ID

        session_id = _text(payload, "session_id", MAX_SESSION_ID)
        if "\x00" in session_id:
            raise validation_error(
                "session_id", "Null characters are not allowed.", "null_characters_not_allowed"
            )
        return session_id

    def _op_session_get(self, project: Any, payload: dict[str, Any]) -> list[Any]:
        from conversations.services import MAX_LIMIT, session_items

        limit = None
        if payload.get("limit") is not None:
            limit = _integer(payload, "limit", 0, MAX_LIMIT)
        return session_items(project=project, session_id=self._session_id(payload), limit=limit)

    def _op_session_add(self, project: Any, payload: dict[str, Any]) -> int:
        from conversations.services import (
            MAX_ITEMS_PER_CALL,
            add_session_items,
            session_items_problem,
        )

        items = payload.get("items")
        if not isinstance(items, list) or not items:
            raise validation_error("items", "A non-empty list of items is required.")
        if len(items) > MAX_ITEMS_PER_CALL:
            raise validation_error(
                "items",
                f"Ensure this field has no more than {MAX_ITEMS_PER_CALL} elements.",
                "max_length",
            )
        problem = session_items_problem(items)
        if problem:
            raise validation_error("items", problem)
        try:
            return add_session_items(
                project=project, session_id=self._session_id(payload), items=items
            )
        except (TypeError, ValueError) as exc:
            raise validation_error("items", f"Items must be JSON-serializable: {exc}") from exc

    def _op_session_pop(self, project: Any, payload: dict[str, Any]) -> Any:
        from conversations.services import pop_session_item

        return pop_session_item(project=project, session_id=self._session_id(payload))

    def _op_session_clear(self, project: Any, payload: dict[str, Any]) -> int:
        from conversations.services import clear_session

        return clear_session(
            project=project, session_id=self._session_id(payload), actor=self._actor
        )


def _unavailable(detail: str) -> EngramiaServiceUnavailableError:
    return EngramiaServiceUnavailableError(
        f"HTTP 503: {detail}",
        status=503,
        type="server_error",
        errors=[{"code": "service_unavailable", "detail": detail, "attr": None}],
    )


__all__ = ["LocalBackend", "configure_django"]
