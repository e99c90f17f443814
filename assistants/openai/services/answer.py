"""Storing a run's answer in one round trip: its message and step, the run's end, the job
that learns it, and the audit entries of all four.

One statement with data-modifying CTEs (PostgreSQL runs it atomically) takes the place of a
transaction of ~13 round trips (the run's lock, an INSERT and an audit entry per row, and
auditlog's re-read of the run before its update). It writes only when the run is plainly
answering: in progress, not waiting on tool outputs, never ended before. Then the run's columns
the audit entry compares are known without reading them, and the entry is auditlog's own diff.
Otherwise it writes nothing and says so: the caller takes the locked ORM path, which decides
between cancelled, expired and the rest (assistants.openai.services.steps.complete_answer).
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from assistants.choices import RunStatus
from assistants.models import Message, Run, RunStep
from jobs.models import Job
from tenants.statements import (
    audit_entry,
    audit_insert,
    audit_values,
    bound_cursor,
    columns,
    insert_select,
    jsonb_change,
    values,
)

# The run's columns the statement sets (job_id too, in SQL); usage is not audited.
RUN_FIELDS = ("status", "completed_at", "required_action", "usage", "incomplete_details")
_AUDITED = [name for name in RUN_FIELDS if name != "usage"]


@functools.cache
def _unset_columns() -> frozenset[str]:
    """The run's columns the statement leaves as they are: not bound."""
    return frozenset(
        str(field.column) for field in Run._meta.concrete_fields if field.column not in RUN_FIELDS
    )


@functools.cache
def answer_statement(with_job: bool) -> str:
    """The statement, inserting the learning job or not (cached: identifiers only)."""
    run_table = Run._meta.db_table
    assignments = ", ".join(
        f"{column} = %({name})s::{db_type}"
        for column, name, db_type in columns(Run, "r")
        if column in RUN_FIELDS
    )
    job_change = jsonb_change("job", "job.id")
    job_change = f"coalesce((SELECT {job_change} FROM job), '{{}}'::jsonb)"  # noqa: S608
    job_repr = "replace(%(ja_object_repr)s, '#None', '#' || job.id)"
    # Old values of the audited columns are what the WHERE asks for: the diff is known.
    jobs = [  # only a streamed run that has none yet gets one
        f"job AS ({insert_select(Job, 'j', source='target')}"
        " WHERE target.streamed AND target.job_id IS NULL RETURNING id)",
        f"job_audit AS ({audit_insert('job', 'ja', object_repr=job_repr)})",
    ]
    parts = [
        f"target AS (SELECT id, streamed, job_id FROM {run_table}"  # noqa: S608
        " WHERE id = %(run)s AND status = %(expected)s"
        " AND required_action IS NULL AND completed_at IS NULL AND incomplete_details IS NULL"
        " FOR UPDATE)",
        *(jobs if with_job else ["job AS (SELECT NULL::bigint AS id WHERE false)"]),
        f"message AS ({insert_select(Message, 'm', source='target')} RETURNING id)",
        f"message_audit AS ({audit_insert('message', 'ma')})",
        f"step AS ({insert_select(RunStep, 's', source='target')} RETURNING id)",
        f"step_audit AS ({audit_insert('step', 'sa')})",
        f"updated AS (UPDATE {run_table} AS run SET {assignments},"  # noqa: S608
        " job_id = coalesce((SELECT id FROM job), run.job_id)"
        " FROM target WHERE run.id = target.id RETURNING run.id)",
        "run_audit AS ("
        + audit_insert("updated", "ra", created=False, extra_changes=f" || {job_change}")
        + ")",
    ]
    result = "(SELECT id FROM updated), (SELECT id FROM message), (SELECT id FROM step)"
    joined = ",\n".join(parts)
    return f"WITH {joined}\nSELECT {result}, (SELECT id FROM job)"  # noqa: S608


def store_answer(
    *, run: Run, ended: Run, message: Message, step: RunStep, job: Job | None, when: Any
) -> bool:
    """Insert the finished message and step and end the run as `ended` says, in one statement.

    run is the run as the engine last read it; ended a copy with the new values of RUN_FIELDS;
    job the learning job to insert if the run is streamed and has none yet. The inserted rows'
    ids are set on the instances (job.pk stays None when it was not needed). False: the run is
    not plainly in progress and nothing was written.
    """
    before = copy.copy(run)
    for name in RUN_FIELDS:
        setattr(before, name, None)
    before.status = RunStatus.IN_PROGRESS
    params: dict[str, Any] = {
        "run": run.pk,
        "expected": RunStatus.IN_PROGRESS.value,
        **values(message, "m"),
        **audit_values(audit_entry(message, when), "ma"),
        **values(step, "s"),
        **audit_values(audit_entry(step, when), "sa"),
        **values(ended, "r", _unset_columns()),
        **audit_values(audit_entry(ended, when, before=before, fields=_AUDITED), "ra"),
    }
    if job is not None:
        params.update(values(job, "j"))
        params.update(audit_values(audit_entry(job, when), "ja"))
    with bound_cursor() as cursor:  # prepared: planning it took ~1 ms
        cursor.execute(answer_statement(job is not None), params)
        updated, message_id, step_id, job_id = cursor.fetchone()
    if updated is None:
        return False
    for instance, pk in ((message, message_id), (step, step_id), (job, job_id)):
        if instance is not None and pk is not None:
            instance.pk = pk
            instance._state.adding = False
    return True
