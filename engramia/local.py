"""Local mode: the same service functions the API calls, in this process, audited as the SDK.

Importing this module does not touch Django; the first call configures it from the environment
(DJANGO_SETTINGS_MODULE, default engramia_site.settings: ENGRAMIA_DATABASE_URL or the embedded
server, providers), checks the database, and creates the tenant and project if they are missing.

The ORM is synchronous and its connections are per thread. Async twins run calls in worker
threads; a worker thread gives its connection back after each call so no thread holds one
forever. When local mode sets Django up itself, the process pools its connections
(LOCAL_POOL_SIZE), so giving one back and borrowing it again costs no new connection.
"""

from __future__ import annotations

import asyncio
import atexit
import getpass
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from engramia.config import Scope
from engramia.errors import (
    EngramiaAPIError,
    EngramiaConfigError,
    error_for_status,
    validation_error,
)
from engramia.types import EvalResult, FeedbackItem, LearnResult, Match

logger = logging.getLogger("engramia")

DEFAULT_SETTINGS_MODULE = "engramia_site.settings"
# Operations that never write (they may read from a replica).
READ_OPERATIONS = frozenset({"project", "recall", "feedback", "session_get"})

# How long local mode trusts its copy of the project before reading it again. Saves and
# deletes of projects in this process drop every copy at once; a change made by another
# process is seen within this time (a model change at once: learn and recall check it).
PROJECT_CACHE_SECONDS = 5.0

# A thread's connections that served a call within this many seconds are not checked again
# before its next call: Django's health check is a round trip (`SELECT 1`), 0.5-2 ms of a
# 4-6 ms recall on a busy machine. After a pause, a database error or the connection's maximum
# age they are (Django's per-request step, `close_old_connections`).
RECHECK_CONNECTIONS_AFTER_SECONDS = 1.0

# Connections a local-mode process pools per database when it sets Django up itself
# (ENGRAMIA_DB_POOL_SIZE overrides it; 0 turns the pool off). A worker thread (the async
# twins, background grading) borrows one for each call and gives it back after: without the
# pool it opened a new connection every call (bench/sdk_async.py: `arecall` ~3x slower).
LOCAL_POOL_SIZE = 8
POOL_VARIABLE = "ENGRAMIA_DB_POOL_SIZE"

_setup_lock = threading.Lock()
# What a forked child inherited from the pools (engramia.local._forget_inherited_connections):
# kept, never used or closed, since their sockets are the parent's.
_inherited: list[Any] = []
_last_call = threading.local()
_database_checked = False
_project_generation = 0


def _project_changed(**kwargs: Any) -> None:
    """A project was saved or deleted in this process: every cached copy is read again."""
    global _project_generation
    _project_generation += 1


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
            from engramia_site.env import process_defaults

            process_defaults.setdefault(POOL_VARIABLE, str(LOCAL_POOL_SIZE))
            try:
                django.setup()
            except Exception as exc:
                raise EngramiaConfigError(
                    f"cannot configure Engramia from the environment "
                    f"(DJANGO_SETTINGS_MODULE={os.environ['DJANGO_SETTINGS_MODULE']}): {exc}"
                ) from exc
            if _connection_pools() is not None and _settings_pool():
                atexit.register(_close_pools)
                os.register_at_fork(after_in_child=_forget_inherited_connections)
        if not (apps.is_installed("memory") and apps.is_installed("tenants")):
            raise EngramiaConfigError(
                f"the Django settings {os.environ.get('DJANGO_SETTINGS_MODULE')!r} do not install "
                "Engramia's apps; use engramia_site.settings (the default)"
            )
        if not _database_checked:
            _check_database(migrate)
            _database_checked = True


def _settings_pool() -> bool:
    from django.conf import settings

    return any(database.get("OPTIONS", {}).get("pool") for database in settings.DATABASES.values())


def _connection_pools() -> dict[str, Any] | None:
    """Django's pools of this process, by database alias (None: this Django keeps none)."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    # A class attribute of Django's PostgreSQL backend (5.1+); read, never created here.
    return getattr(DatabaseWrapper, "_connection_pools", None)


def _close_pools() -> None:
    """At exit: close the pools, so that their threads are not left to the interpreter's end."""
    for pool in list((_connection_pools() or {}).values()):
        try:
            pool.close(timeout=1.0)
        except Exception:  # the process is ending either way
            logger.debug("could not close a connection pool at exit", exc_info=True)


def _forget_inherited_connections() -> None:
    """In a forked child: drop the parent's pools and connections without using or closing
    them (their sockets are the parent's); the child's first call opens its own."""
    from django.db import connections

    pools = _connection_pools()
    if pools:
        _inherited.extend(pools.values())
        pools.clear()
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None:
            _inherited.append(connection.connection)
            connection.connection = None


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


def _watch_projects() -> None:
    """Drop cached projects whenever this process saves or deletes one."""
    from django.db.models.signals import post_delete, post_save

    from tenants.models import Project

    post_save.connect(_project_changed, sender=Project, dispatch_uid="engramia-local-project")
    post_delete.connect(_project_changed, sender=Project, dispatch_uid="engramia-local-project")


def _recycle_connections() -> None:
    """Drop a connection the server closed or that is too old, unless it just served a call."""
    from django.db import close_old_connections, connections

    now = time.monotonic()
    if now - getattr(_last_call, "at", -1e9) < RECHECK_CONNECTIONS_AFTER_SECONDS and not any(
        connection.errors_occurred
        or (connection.close_at is not None and now >= connection.close_at)
        # a call that left autocommit changed: Django's check closes such a connection
        or (
            connection.connection is not None
            and connection.autocommit != connection.settings_dict["AUTOCOMMIT"]
        )
        for connection in connections.all(initialized_only=True)
    ):
        return
    close_old_connections()


def _release_thread_connections() -> None:
    """Give back this worker thread's database connections (unless a transaction is open):
    to the pool when there is one, else closed."""
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
        self._cached: tuple[Any, int, float] | None = None  # project, generation, read at
        self._jobs: Any = None  # engramia.local_jobs.LocalJobRunner

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
            _watch_projects()
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
        """The scope's project, created (and audited) when missing; kept PROJECT_CACHE_SECONDS."""
        cached = self._cached
        if (
            cached is not None
            and cached[1] == _project_generation
            and time.monotonic() - cached[2] < PROJECT_CACHE_SECONDS
        ):
            return cached[0]
        generation, read_at = _project_generation, time.monotonic()
        project = self._read_project()
        self._cached = (project, generation, read_at)
        self._start_jobs(project.pk)
        return project

    def _read_project(self) -> Any:
        from tenants.models import Project
        from tenants.services import ScopeError, ensure_project

        if self._project_pk is not None:
            project = Project.objects.select_related("tenant").filter(pk=self._project_pk).first()
            if project is not None:
                return project
        try:
            project = ensure_project(self.scope.tenant, self.scope.project, actor=self._actor)
        except ScopeError as exc:
            raise EngramiaConfigError(str(exc)) from exc
        self._project_pk = project.pk
        return project

    def _start_jobs(self, project_id: int) -> None:
        """Run the project's jobs in this process (engramia.local_jobs) unless turned off."""
        from engramia.local_jobs import LocalJobRunner, local_jobs_enabled

        with self._lock:
            if self._jobs is not None and self._jobs.project_id == project_id and self._jobs.alive:
                return
            if self._jobs is not None:
                self._jobs.stop()
            self._jobs = LocalJobRunner(project_id) if local_jobs_enabled() else None

    def close(self) -> None:
        """Stop the job thread (connections belong to threads, see the module docstring)."""
        with self._lock:
            jobs, self._jobs = self._jobs, None
        if jobs is not None:
            jobs.stop()

    async def aclose(self) -> None:
        """`close` off the event loop."""
        await asyncio.to_thread(self.close)

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
        from django.db import OperationalError, connection

        from engramia_site.errors import DomainError, NotFound
        from engramia_site.request_context import acting_as
        from tenants.replica_pinning import process_principal, routed_call

        if not connection.in_atomic_block:
            _recycle_connections()

        # With read replicas, reads go to one unless this process wrote lately (then to the
        # primary, so it reads its own writes).
        read_only = operation in READ_OPERATIONS
        with (
            acting_as(self._actor, label=self._label),
            routed_call(process_principal(), read_only=read_only),
        ):
            try:
                return handler(self._project(), payload)
            except DomainError as exc:
                if isinstance(exc, NotFound):  # e.g. the project was deleted: read it again
                    self._cached = None
                raise sdk_error(exc) from exc
            except OperationalError as exc:
                # The database is down, or every pooled connection stayed busy for
                # ENGRAMIA_DB_POOL_TIMEOUT seconds: the API's 503, as a typed error.
                from engramia_site.api_errors import ServiceUnavailable

                unavailable = ServiceUnavailable(f"The database is unavailable: {exc}")
                raise typed_error(unavailable) from exc
            finally:
                _last_call.at = time.monotonic()

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
        from memory.operations import LEARN

        result = LEARN.run(project=project, actor=self._actor, data=payload).result
        return LearnResult(
            pattern_id=result.pattern_id,
            stored=result.stored,
            duplicate_of=result.duplicate_of,
            replaced=result.replaced,
        )

    def _op_learn_many(self, project: Any, payload: dict[str, Any]) -> list[LearnResult]:
        from memory.operations import learn_many

        return [
            LearnResult(
                pattern_id=result.pattern_id,
                stored=result.stored,
                duplicate_of=result.duplicate_of,
            )
            for result in learn_many(project=project, actor=self._actor, data=payload)
        ]

    def _op_recall(self, project: Any, payload: dict[str, Any]) -> list[Match]:
        from memory.operations import recall

        result = recall(project=project, data=payload)
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
        from memory.operations import EVALUATE

        outcome = EVALUATE.run(project=project, actor=self._actor, data=payload)
        result = outcome.result
        return EvalResult(
            median_score=result.median_score,
            scores=list(result.scores),
            spread=result.spread,
            feedback=result.feedback,
            evaluator=result.evaluator,
            pattern_id=outcome.pattern_id,
        )

    def _op_feedback(self, project: Any, payload: dict[str, Any]) -> list[FeedbackItem]:
        from memory.operations import feedback

        return [
            FeedbackItem(feedback=row["feedback"], count=row["count"], last_seen=row["last_seen"])
            for row in feedback(project=project, data=payload)
        ]

    def _op_delete_pattern(self, project: Any, payload: dict[str, Any]) -> None:
        from memory.operations import delete_pattern

        delete_pattern(project=project, actor=self._actor, data=payload)

    def _op_record_outcome(self, project: Any, payload: dict[str, Any]) -> int:
        from memory.operations import credit_outcome

        return credit_outcome(project=project, actor=self._actor, data=payload)

    # -- sessions (the Agents SDK Session protocol) ---------------------------------------

    def _session_id(self, payload: dict[str, Any]) -> str:
        from conversations.inputs import SessionIdSerializer
        from jobs.operations import validate_input

        data = {"session_id": payload.get("session_id")}
        session_id: str = validate_input(SessionIdSerializer, data)["session_id"]
        return session_id

    def _op_session_get(self, project: Any, payload: dict[str, Any]) -> list[Any]:
        from conversations.inputs import SessionReadSerializer
        from conversations.services import session_items
        from jobs.operations import validate_input

        query = {"limit": payload["limit"]} if payload.get("limit") is not None else {}
        limit = validate_input(SessionReadSerializer, query).get("limit")
        return session_items(project=project, session_id=self._session_id(payload), limit=limit)

    def _op_session_add(self, project: Any, payload: dict[str, Any]) -> int:
        from conversations.inputs import SessionItemsAddSerializer
        from conversations.services import add_session_items
        from jobs.operations import validate_input

        items = validate_input(SessionItemsAddSerializer, {"items": payload.get("items")})["items"]
        try:
            return add_session_items(
                project=project,
                session_id=self._session_id(payload),
                items=items,
                actor=self._actor,
            )
        except (TypeError, ValueError) as exc:
            raise validation_error("items", f"Items must be JSON-serializable: {exc}") from exc

    def _op_session_pop(self, project: Any, payload: dict[str, Any]) -> Any:
        from conversations.services import pop_session_item

        return pop_session_item(
            project=project, session_id=self._session_id(payload), actor=self._actor
        )

    def _op_session_clear(self, project: Any, payload: dict[str, Any]) -> int:
        from conversations.services import clear_session

        return clear_session(
            project=project, session_id=self._session_id(payload), actor=self._actor
        )


def sdk_error(exc: Any) -> EngramiaAPIError:
    """The SDK's typed error for a service's refusal: what the API would have answered."""
    from engramia_site.api_errors import from_domain_error

    return typed_error(from_domain_error(exc))


def typed_error(api_exception: Any) -> EngramiaAPIError:
    """The SDK's typed error for one of the API's exceptions, with the API's body."""
    from engramia_site.api_errors import api_error_body

    body = api_error_body(api_exception)
    return error_for_status(
        int(api_exception.status_code), type=body["type"], errors=body["errors"]
    )


__all__ = ["LocalBackend", "configure_django"]
