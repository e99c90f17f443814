"""`Memory`: learn, recall and evaluate patterns, locally (Django services) or over the REST API.

    from engramia import Memory
    memory = Memory()                 # local: ENGRAMIA_PROJECT=tenant/project (+ database env)
    memory = Memory(api_url="https://engramia.internal", api_key="eng_…")   # remote

Both modes take the same arguments, return the same types (engramia.types) and raise the same
exceptions (engramia.errors). Every method has an async twin (`alearn`, `arecall`, …) that never
blocks the event loop. Importing this module does not import Django.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, Protocol

from engramia.config import Scope, resolve_remote, resolve_scope
from engramia.errors import EngramiaConfigError, validation_error
from engramia.types import EvalResult, FeedbackItem, LearnResult, Match

__all__ = ["Memory"]

OnDuplicate = Literal["skip", "replace_with_better", "keep_both"]
ReadPath = Literal["openai", "dual", "engramia"]


class _Backend(Protocol):
    mode: str

    def describe(self) -> str: ...

    def call(self, operation: str, payload: dict[str, Any]) -> Any: ...

    async def acall(self, operation: str, payload: dict[str, Any]) -> Any: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


def _timestamp(value: datetime | str | float | None) -> str | float | None:
    """created_at as the API takes it: ISO 8601 or epoch seconds."""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _session_item_json(item: Any) -> Any:
    """An Agents SDK input item as plain JSON, dumped as conversations.services._as_json does.

    Both modes send items through here, so local and remote mode store identical JSON.
    """
    dump = getattr(item, "model_dump", None)
    if callable(dump):
        item = dump(mode="json", exclude_unset=True)
    return json.loads(json.dumps(item, allow_nan=False))


def _session_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A session call's payload in the shape both backends take: JSON items, limit None or ≥ 0."""
    payload = dict(payload)
    limit = payload.get("limit")
    if isinstance(limit, int) and not isinstance(limit, bool) and limit < 0:
        payload["limit"] = None  # every item, as the Agents SDK's SQLiteSession reads it
    items = payload.get("items")
    if isinstance(items, list | tuple):
        try:
            payload["items"] = [_session_item_json(item) for item in items]
        except (TypeError, ValueError, RecursionError) as exc:
            raise validation_error("items", f"Items must be JSON-serializable: {exc}") from exc
    return payload


def _ids(pattern_ids: Sequence[int]) -> list[int]:
    if isinstance(pattern_ids, int | str):
        raise TypeError("pattern_ids must be a sequence of pattern ids")
    return list(pattern_ids)


class Memory:
    """Agent memory for one project: local (in-process services) or remote (REST API).

    Mode: remote when `api_url` (or ENGRAMIA_API_URL) is given, with `api_key` (or
    ENGRAMIA_API_KEY); otherwise local, scoped by `project="tenant/project"`, ENGRAMIA_PROJECT,
    or ENGRAMIA_TENANT_ID + ENGRAMIA_PROJECT_ID. Bad configuration raises EngramiaConfigError
    here, not at the first call.
    """

    def __init__(
        self,
        project: str | None = None,
        *,
        api_url: str | None = None,
        api_key: str | None = None,
        actor: Any = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_retry_wait: float = 30.0,
        settings_module: str | None = None,
        migrate: bool | None = None,
    ) -> None:
        remote = resolve_remote(project, api_url, api_key)
        self._backend: _Backend
        self.scope: Scope | None
        if remote is not None:
            if actor is not None:
                raise EngramiaConfigError(
                    "actor= applies to local mode; a remote Memory acts as its API key's user"
                )
            from engramia.remote import RemoteBackend

            self.scope = None
            self._backend = RemoteBackend(
                remote, timeout=timeout, max_retries=max_retries, max_retry_wait=max_retry_wait
            )
        else:
            from engramia.local import LocalBackend

            self.scope = resolve_scope(project)
            self._backend = LocalBackend(
                self.scope, actor=actor, settings_module=settings_module, migrate=migrate
            )

    def __repr__(self) -> str:
        return f"<Memory {self._backend.describe()}>"

    @property
    def mode(self) -> str:
        """'local' or 'remote'."""
        return self._backend.mode

    @property
    def project(self) -> str | None:
        """'tenant/project' in local mode (remote: the key decides; see project_info())."""
        return self.scope.path if self.scope else None

    # -- learn -----------------------------------------------------------------------------

    @staticmethod
    def _learn_payload(
        task: str,
        code: str,
        eval_score: float | None,
        output: str | None,
        source: str,
        run_id: str | None,
        external_id: str | None,
        created_at: datetime | str | float | None,
        on_duplicate: str,
        metadata: dict[str, Any] | None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "task": task,
            "code": code,
            "source": source,
            "on_duplicate": on_duplicate,
        }
        optional = {
            "eval_score": eval_score,
            "output": output,
            "run_id": run_id,
            "external_id": external_id,
            "created_at": _timestamp(created_at),
            "metadata": metadata,
        }
        payload.update({name: value for name, value in optional.items() if value is not None})
        return payload

    def learn(
        self,
        task: str,
        code: str,
        eval_score: float | None = None,
        output: str | None = None,
        source: str = "sdk",
        run_id: str | None = None,
        external_id: str | None = None,
        created_at: datetime | str | float | None = None,
        on_duplicate: OnDuplicate = "skip",
        metadata: dict[str, Any] | None = None,
    ) -> LearnResult:
        """Store a pattern (task → solution), unless it is a known duplicate or external_id."""
        payload = self._learn_payload(
            task,
            code,
            eval_score,
            output,
            source,
            run_id,
            external_id,
            created_at,
            on_duplicate,
            metadata,
        )
        result: LearnResult = self._backend.call("learn", payload)
        return result

    async def alearn(
        self,
        task: str,
        code: str,
        eval_score: float | None = None,
        output: str | None = None,
        source: str = "sdk",
        run_id: str | None = None,
        external_id: str | None = None,
        created_at: datetime | str | float | None = None,
        on_duplicate: OnDuplicate = "skip",
        metadata: dict[str, Any] | None = None,
    ) -> LearnResult:
        """`learn` without blocking the event loop."""
        payload = self._learn_payload(
            task,
            code,
            eval_score,
            output,
            source,
            run_id,
            external_id,
            created_at,
            on_duplicate,
            metadata,
        )
        result: LearnResult = await self._backend.acall("learn", payload)
        return result

    @staticmethod
    def _learn_many_payload(
        items: Sequence[Mapping[str, Any]], source: str, on_duplicate: OnDuplicate
    ) -> dict[str, Any]:
        if isinstance(items, str | bytes | Mapping) or not isinstance(items, Sequence):
            raise validation_error("items", "Expected a list of items (dicts of learn's fields).")
        rows = [
            {**item, "created_at": _timestamp(item.get("created_at"))}
            if isinstance(item, Mapping)
            else item
            for item in items
        ]
        return {"items": rows, "source": source, "on_duplicate": on_duplicate}

    def learn_many(
        self,
        items: Sequence[Mapping[str, Any]],
        source: str = "sdk",
        on_duplicate: Literal["skip", "keep_both"] = "skip",
    ) -> list[LearnResult]:
        """Learn up to 1,000 patterns in one call, one result per item in order.

        Each item is a dict of learn's fields (task, code, eval_score, output, run_id,
        external_id, created_at, metadata). Local mode stores them on the bulk path (one
        embedding batch, COPY); remote mode sends one learn request per item.
        """
        payload = self._learn_many_payload(items, source, on_duplicate)
        if self._backend.mode == "remote":
            return [self._backend.call("learn", item) for item in self._one_by_one(payload)]
        results: list[LearnResult] = self._backend.call("learn_many", payload)
        return results

    async def alearn_many(
        self,
        items: Sequence[Mapping[str, Any]],
        source: str = "sdk",
        on_duplicate: Literal["skip", "keep_both"] = "skip",
    ) -> list[LearnResult]:
        """`learn_many` without blocking the event loop."""
        payload = self._learn_many_payload(items, source, on_duplicate)
        if self._backend.mode == "remote":
            return [await self._backend.acall("learn", item) for item in self._one_by_one(payload)]
        results: list[LearnResult] = await self._backend.acall("learn_many", payload)
        return results

    @staticmethod
    def _one_by_one(payload: dict[str, Any]) -> list[dict[str, Any]]:
        """learn_many's items as single learn payloads (remote mode has no bulk endpoint)."""
        if payload["on_duplicate"] not in ("skip", "keep_both"):
            raise validation_error("on_duplicate", "Use skip or keep_both with learn_many.")
        extra = {"source": payload["source"], "on_duplicate": payload["on_duplicate"]}
        return [
            {**item, **extra} if isinstance(item, Mapping) else item for item in payload["items"]
        ]

    # -- recall ----------------------------------------------------------------------------

    @staticmethod
    def _recall_payload(
        task: str,
        limit: int,
        eval_weighted: bool,
        recency_weight: float,
        min_similarity: float | None,
        source: str | None,
        explain: bool,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "task": task,
            "limit": limit,
            "eval_weighted": eval_weighted,
            "recency_weight": recency_weight,
            "explain": explain,
        }
        if min_similarity is not None:
            payload["min_similarity"] = min_similarity
        if source is not None:
            payload["source"] = source
        return payload

    def recall(
        self,
        task: str,
        limit: int = 5,
        *,
        eval_weighted: bool = True,
        recency_weight: float = 0.0,
        min_similarity: float | None = None,
        source: str | None = None,
        explain: bool = False,
    ) -> list[Match]:
        """The project's most useful patterns for a task, best first (read-only)."""
        payload = self._recall_payload(
            task, limit, eval_weighted, recency_weight, min_similarity, source, explain
        )
        matches: list[Match] = self._backend.call("recall", payload)
        return matches

    async def arecall(
        self,
        task: str,
        limit: int = 5,
        *,
        eval_weighted: bool = True,
        recency_weight: float = 0.0,
        min_similarity: float | None = None,
        source: str | None = None,
        explain: bool = False,
    ) -> list[Match]:
        """`recall` without blocking the event loop."""
        payload = self._recall_payload(
            task, limit, eval_weighted, recency_weight, min_similarity, source, explain
        )
        matches: list[Match] = await self._backend.acall("recall", payload)
        return matches

    # -- evaluate --------------------------------------------------------------------------

    @staticmethod
    def _evaluate_payload(
        task: str, code: str, output: str | None, num_evals: int, pattern_id: int | None
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"task": task, "code": code, "num_evals": num_evals}
        if output is not None:
            payload["output"] = output
        if pattern_id is not None:
            payload["pattern_id"] = pattern_id
        return payload

    def evaluate(
        self,
        task: str,
        code: str,
        output: str | None = None,
        num_evals: int = 3,
        pattern_id: int | None = None,
    ) -> EvalResult:
        """Grade a solution with the configured LLM judge; recorded on `pattern_id` if given.

        Raises EngramiaJudgeNotConfiguredError when no judge is configured (ENGRAMIA_LLM).
        """
        payload = self._evaluate_payload(task, code, output, num_evals, pattern_id)
        result: EvalResult = self._backend.call("evaluate", payload)
        return result

    async def aevaluate(
        self,
        task: str,
        code: str,
        output: str | None = None,
        num_evals: int = 3,
        pattern_id: int | None = None,
    ) -> EvalResult:
        """`evaluate` without blocking the event loop."""
        payload = self._evaluate_payload(task, code, output, num_evals, pattern_id)
        result: EvalResult = await self._backend.acall("evaluate", payload)
        return result

    # -- feedback, delete, outcomes --------------------------------------------------------

    def feedback(self, limit: int = 20) -> list[FeedbackItem]:
        """Recurring evaluator feedback in the project, most frequent first."""
        items: list[FeedbackItem] = self._backend.call("feedback", {"limit": limit})
        return items

    async def afeedback(self, limit: int = 20) -> list[FeedbackItem]:
        """`feedback` without blocking the event loop."""
        items: list[FeedbackItem] = await self._backend.acall("feedback", {"limit": limit})
        return items

    def delete_pattern(self, pattern_id: int) -> None:
        """Delete a pattern and its evaluations (audited); EngramiaNotFoundError if absent."""
        self._backend.call("delete_pattern", {"pattern_id": pattern_id})

    async def adelete_pattern(self, pattern_id: int) -> None:
        """`delete_pattern` without blocking the event loop."""
        await self._backend.acall("delete_pattern", {"pattern_id": pattern_id})

    def record_outcome(self, pattern_ids: Sequence[int], score: float, feedback: str = "") -> int:
        """Credit patterns a run used with that run's 0-10 outcome; returns how many."""
        payload = {"pattern_ids": _ids(pattern_ids), "score": score, "feedback": feedback}
        credited: int = self._backend.call("record_outcome", payload)
        return credited

    async def arecord_outcome(
        self, pattern_ids: Sequence[int], score: float, feedback: str = ""
    ) -> int:
        """`record_outcome` without blocking the event loop."""
        payload = {"pattern_ids": _ids(pattern_ids), "score": score, "feedback": feedback}
        credited: int = await self._backend.acall("record_outcome", payload)
        return credited

    # -- the project -----------------------------------------------------------------------

    def project_info(self) -> dict[str, Any]:
        """The project: {"tenant", "slug", "name", "read_path", "embedding_model"}."""
        info: dict[str, Any] = self._backend.call("project", {})
        return info

    async def aproject_info(self) -> dict[str, Any]:
        """`project_info` without blocking the event loop."""
        info: dict[str, Any] = await self._backend.acall("project", {})
        return info

    @property
    def read_path(self) -> ReadPath:
        """Where the app should read memory from during a migration: openai, dual or engramia.

        Read fresh on every access, so a cut-over (`engramia cutover`) takes effect at once.
        """
        return self.project_info()["read_path"]  # type: ignore[no-any-return]

    async def aread_path(self) -> ReadPath:
        """`read_path` without blocking the event loop."""
        return (await self.aproject_info())["read_path"]  # type: ignore[no-any-return]

    # -- sessions (used by engramia.sdk.EngramiaSession) ------------------------------------

    def _session_call(self, operation: str, payload: dict[str, Any]) -> Any:
        return self._backend.call(f"session_{operation}", _session_payload(payload))

    async def _asession_call(self, operation: str, payload: dict[str, Any]) -> Any:
        return await self._backend.acall(f"session_{operation}", _session_payload(payload))

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Release HTTP connections (remote mode)."""
        self._backend.close()

    async def aclose(self) -> None:
        """Release this event loop's HTTP connections (remote mode)."""
        await self._backend.aclose()

    def __enter__(self) -> Memory:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Memory:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
