"""The heartbeat thread keeps a quiet job alive, and never waits on a locked row."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from jobs.context import Heartbeat
from jobs.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_running_job_beats_while_its_handler_is_silent(make_job):
    long_ago = timezone.now() - timedelta(minutes=5)
    job = make_job(status="running", attempts=1, started_at=long_ago, heartbeat_at=long_ago)
    with Heartbeat(job.pk, attempt=1, interval=0.05):
        time.sleep(0.4)
    job.refresh_from_db()
    assert job.heartbeat_at > timezone.now() - timedelta(seconds=2)


def test_a_beat_for_another_attempt_changes_nothing(make_job):
    long_ago = timezone.now() - timedelta(minutes=5)
    job = make_job(status="running", attempts=2, started_at=long_ago, heartbeat_at=long_ago)
    with Heartbeat(job.pk, attempt=1, interval=0.05):
        time.sleep(0.3)
    job.refresh_from_db()
    assert job.heartbeat_at == long_ago


def test_a_locked_row_is_skipped_not_waited_for(make_job):
    long_ago = timezone.now() - timedelta(minutes=5)
    job = make_job(status="running", attempts=1, started_at=long_ago, heartbeat_at=long_ago)
    began = time.monotonic()
    with transaction.atomic():
        Job.objects.select_for_update().get(pk=job.pk)  # someone is writing the job
        with Heartbeat(job.pk, attempt=1, interval=0.05):
            time.sleep(0.3)
    assert time.monotonic() - began < 2  # the thread stopped promptly, never blocked
    job.refresh_from_db()
    assert job.heartbeat_at == long_ago
