"""Job kinds used only by the tests; workers import them through ENGRAMIA_JOB_MODULES."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.dispatch import receiver
from django_q.signals import pre_execute

from engramia_site.request_context import current_context
from jobs.registry import JobContext, JobFailed, TransientJobError, job_kind


@receiver(pre_execute, dispatch_uid="tests.jobs.forget_cached_content_types")
def forget_cached_content_types(sender: Any, **kwargs: Any) -> None:
    """The suite flushes the database between transactional tests, which recreates content types
    under new ids; a worker that outlives one test must not audit with the old ones."""
    ContentType.objects.clear_cache()


# Handler invocations in this process, by kind (for in-process tests).
CALLS: Counter[str] = Counter()


@job_kind("test.echo", timeout=30)
def echo(job: Any, ctx: JobContext) -> dict[str, Any]:
    """Return the params and who the job ran as."""
    CALLS["test.echo"] += 1
    ctx.progress(1, 1)
    context = current_context()
    return {
        "echo": job.params,
        "actor": context.actor.email if context and context.actor else None,
        "api_key_name": context.api_key_name if context else None,
        "request_id": context.request_id if context else None,
    }


@job_kind("test.process", timeout=30)
def process(job: Any, ctx: JobContext) -> dict[str, Any]:
    """How the worker process running the job was set up."""
    import gc

    return {"frozen_objects": gc.get_freeze_count()}


@job_kind("test.fail", timeout=30, max_attempts=2)
def fail(job: Any, ctx: JobContext) -> dict[str, Any]:
    """Fail with the message in params (a bug: no retry)."""
    CALLS["test.fail"] += 1
    raise ValueError(job.params.get("message", "boom"))


@job_kind("test.refuse", timeout=30)
def refuse(job: Any, ctx: JobContext) -> dict[str, Any]:
    """Fail on purpose with a user-facing message."""
    raise JobFailed(job.params.get("message", "refused"))


@job_kind("test.flaky", timeout=30, max_attempts=3)
def flaky(job: Any, ctx: JobContext) -> dict[str, Any]:
    """Fail transiently until attempt params["succeed_on"]."""
    CALLS["test.flaky"] += 1
    if job.attempts < job.params["succeed_on"]:
        raise TransientJobError(
            f"not yet (attempt {job.attempts})", retry_after=job.params.get("retry_after")
        )
    return {"succeeded_on": job.attempts}


@job_kind("test.slow", timeout=60)
def slow(job: Any, ctx: JobContext) -> dict[str, Any]:
    """Take params["steps"] steps of params["delay"] seconds, checkpointing after each."""
    steps, delay = job.params["steps"], job.params.get("delay", 0.1)
    start = (ctx.checkpoint_data or {}).get("next", 0)
    for step in range(start, steps):
        time.sleep(delay)
        ctx.progress(step + 1, steps)
        ctx.checkpoint({"next": step + 1})
    return {"steps": steps}


@job_kind("test.bulk_groups", timeout=120, max_attempts=3)
def bulk_groups(job: Any, ctx: JobContext) -> dict[str, Any]:
    """Store auth groups item-0 … item-<count-1> idempotently, resuming from the checkpoint."""
    count, delay = job.params["count"], job.params.get("delay", 0)
    start = (ctx.checkpoint_data or {}).get("next", 0)
    created = 0
    for number in range(start, count):
        _, was_created = Group.objects.get_or_create(name=f"item-{number}")
        created += was_created
        if delay:
            time.sleep(delay)
        ctx.progress(number + 1, count)
        ctx.checkpoint({"next": number + 1})
    return {"stored": count, "resumed_from": start, "created_this_attempt": created}


@job_kind("test.sleepy", timeout=1, max_attempts=1)
def sleepy(job: Any, ctx: JobContext) -> dict[str, Any]:
    """Sleep past its one-second time limit."""
    time.sleep(job.params.get("seconds", 10))
    return {"woke": True}


@job_kind("test.bad_result", timeout=30)
def bad_result(job: Any, ctx: JobContext) -> dict[str, Any]:
    """Return something JSON cannot hold."""
    return {"when": object()}


@job_kind("test.quiet", timeout=30, max_attempts=3)
def quiet(job: Any, ctx: JobContext) -> dict[str, Any]:
    """Block for params["seconds"] without reporting anything (one long provider call)."""
    time.sleep(job.params["seconds"])
    return {"attempt": job.attempts}
