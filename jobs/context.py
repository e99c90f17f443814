"""What a running handler sees: progress, checkpoints, cancellation; plus the worker's heartbeat."""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, transaction
from django.utils import timezone

from jobs.choices import JobStatus
from jobs.conf import PROGRESS_INTERVAL_SECONDS
from jobs.exceptions import JobCancelled, JobSuperseded

if TYPE_CHECKING:
    from jobs.models import Job

logger = logging.getLogger("jobs")


def json_snapshot(value: Any, what: str) -> Any:
    """A JSON-safe deep copy of value, or ValueError naming what could not be stored."""
    try:
        return json.loads(json.dumps(value, cls=DjangoJSONEncoder))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable: {exc}") from None


class JobContext:
    """Handed to `handler(job, ctx)`: report progress, save checkpoints, notice cancellation.

    Writes are batched: the database is touched at most every PROGRESS_INTERVAL_SECONDS (or when
    forced), so calling `progress()` for every item of a bulk job stays cheap.
    """

    def __init__(self, job: Job, *, interval: float = PROGRESS_INTERVAL_SECONDS) -> None:
        self.job_id: int = job.pk
        self.attempt: int = job.attempts
        self.done: int = job.progress_done
        self.total: int | None = job.progress_total
        self._checkpoint: Any = copy.deepcopy(job.checkpoint)
        self._cancel_requested = job.cancel_requested
        self._interval = interval
        self._last_sync = time.monotonic()
        self._progress_dirty = False
        self._checkpoint_dirty = False

    @property
    def checkpoint_data(self) -> Any:
        """The latest checkpoint (this attempt's, or the previous one's when resuming), or None."""
        return self._checkpoint

    @property
    def cancel_requested(self) -> bool:
        """True once someone asked to cancel (as of the last sync)."""
        return self._cancel_requested

    def progress(self, done: int, total: int | None = None) -> None:
        """Report done of total items; also proves the worker alive."""
        if done < 0 or (total is not None and total < 0):
            raise ValueError("progress counts cannot be negative")
        self.done = int(done)
        if total is not None:
            self.total = int(total)
        self._progress_dirty = True
        self._sync_if_due()

    def checkpoint(self, data: Any, *, force: bool = False) -> None:
        """Remember where to resume from; stops here (JobCancelled) if cancellation was requested.

        Saved at most every PROGRESS_INTERVAL_SECONDS unless force: work since the last saved
        checkpoint is redone after a crash, so it must be idempotent.
        """
        self._checkpoint = json_snapshot(data, "a job checkpoint")
        self._checkpoint_dirty = True
        self._sync_if_due(force=force)
        self._raise_if_cancelled()

    def check_cancelled(self) -> None:
        """Raise JobCancelled if cancellation was requested."""
        self._sync_if_due()
        self._raise_if_cancelled()

    def flush(self) -> None:
        """Write pending progress and checkpoint now and re-read the cancel flag."""
        self._sync()

    def _raise_if_cancelled(self) -> None:
        if self._cancel_requested:
            raise JobCancelled("The job was cancelled.")

    def _sync_if_due(self, *, force: bool = False) -> None:
        if force or time.monotonic() - self._last_sync >= self._interval:
            self._sync()

    def _sync(self) -> None:
        from jobs.models import Job

        fields: dict[str, Any] = {"heartbeat_at": timezone.now()}
        if self._progress_dirty:
            fields.update(progress_done=self.done, progress_total=self.total)
        if self._checkpoint_dirty:
            fields["checkpoint"] = self._checkpoint
        mine = Job.objects.filter(pk=self.job_id, status=JobStatus.RUNNING, attempts=self.attempt)
        if not mine.update(**fields):
            raise JobSuperseded(f"job {self.job_id} attempt {self.attempt} no longer owns the job")
        self._progress_dirty = self._checkpoint_dirty = False
        self._last_sync = time.monotonic()
        flag = Job.objects.filter(pk=self.job_id).values_list("cancel_requested", flat=True).first()
        self._cancel_requested = bool(flag)

    def pending_fields(self) -> dict[str, Any]:
        """The progress and checkpoint not yet written (for the final save)."""
        return {
            "progress_done": self.done,
            "progress_total": self.total,
            "checkpoint": self._checkpoint,
        }


class Heartbeat:
    """Stamp heartbeat_at from a background thread while a handler runs.

    Handlers may block for minutes without calling progress() (one LLM call, one big query);
    the beat keeps the job from being taken for abandoned. It never waits on a row lock: a locked
    row means someone is writing the job right now, and the next beat will do.
    """

    def __init__(self, job_id: int, attempt: int, interval: float) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"job-{job_id}-heartbeat", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def _run(self) -> None:
        from jobs.models import Job

        try:
            while not self._stop.wait(self.interval):
                try:
                    with transaction.atomic():
                        unlocked = (
                            Job.objects.filter(
                                pk=self.job_id, status=JobStatus.RUNNING, attempts=self.attempt
                            )
                            .select_for_update(skip_locked=True)
                            .values("pk")
                        )
                        Job.objects.filter(pk__in=unlocked).update(heartbeat_at=timezone.now())
                except Exception:
                    logger.warning("heartbeat of job %s failed", self.job_id, exc_info=True)
        finally:
            connections.close_all()  # this thread's connections only
