"""Operations: a slow write offered both synchronously and as a job, written once.

An operation names its input serializer (the one place its limits are written), the service
call it performs and how its result is described as JSON. The API's ⧗ endpoints validate with
it and either perform it or submit it as a job (`jobs.api.async_support.respond`); the job kind
of the same name validates the stored params again and performs it in a worker; the SDK's local
mode and the MCP server perform it in-process. Services raise domain errors
(`engramia_site.errors`), which each of those callers maps its own way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from rest_framework import serializers

from engramia_site.errors import InvalidInput
from jobs.registry import job_kind
from jobs.services import submit_job

Result = TypeVar("Result")

# Bound fields per serializer class, made once per thread: DRF deep-copies every declared field
# (and every nested serializer's) for each serializer it makes: a third of a millisecond per
# learn, 0.6 ms for a run's input with its nested messages. Validation only reads them: it
# keeps no state on a field or a nested serializer (DRF 3.18), and what a field reads from
# its root (`partial`, `context`) is the same on the serializer they were bound to, made like
# the ones validate_input makes (tests/jobs/test_validate_input.py checks the answers).
_fields = threading.local()


def _bound_fields(serializer_class: type[serializers.Serializer]) -> Any:
    """The fields of a context-free, non-partial serializer_class, bound once per thread."""
    cache: dict[type, Any] = _fields.__dict__.setdefault("by_class", {})
    if serializer_class not in cache:
        cache[serializer_class] = serializer_class().fields
    return cache[serializer_class]


def validate_input(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """The validated form of data, or InvalidInput with every field's errors."""
    serializer = serializer_class(data=data)
    # Bound to a serializer of the same class without data or context, as this one is.
    serializer.fields = _bound_fields(serializer_class)
    if not serializer.is_valid():
        raise InvalidInput(serializer.errors)
    return dict(serializer.validated_data)


@dataclass(frozen=True)
class Operation(Generic[Result]):
    """Validate → perform one service call → describe the result; optionally as a job kind."""

    kind: str
    input: type[serializers.Serializer]
    perform: Callable[..., Result]  # perform(project=, actor=, **validated) -> Result
    describe: Callable[[Result], dict[str, Any]]
    # Whether a result created something (the API answers 201 rather than 200).
    created: Callable[[Result], bool] = lambda result: False

    def validate(self, data: Any) -> dict[str, Any]:
        """The validated input (InvalidInput when it breaks a rule)."""
        return validate_input(self.input, data)

    def run(self, *, project: Any, actor: Any, data: Any) -> Result:
        """Validate raw input and perform the operation in this process."""
        return self.perform(project=project, actor=actor, **self.validate(data))

    def submit(self, *, project: Any, actor: Any, data: Mapping[str, Any]) -> Any:
        """Check the input now (a 400, not a failed job later), then queue it as a job."""
        self.validate(data)
        return submit_job(project=project, kind=self.kind, params=dict(data), actor=actor)

    def as_job_kind(self, *, timeout: int, max_attempts: int = 3) -> Operation[Result]:
        """Register the job kind that performs this operation; returns the operation."""

        @job_kind(self.kind, timeout=timeout, max_attempts=max_attempts)
        def handler(job: Any, ctx: Any) -> dict[str, Any]:
            return self.describe(self.run(project=job.project, actor=job.actor, data=job.params))

        handler.__qualname__ = f"operation.{self.kind}"
        handler.__module__ = getattr(self.perform, "__module__", __name__)
        return self


__all__ = ["Operation", "validate_input"]
