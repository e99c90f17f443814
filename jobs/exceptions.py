"""Exceptions of the job engine: what handlers raise, and what services refuse."""

from __future__ import annotations

from engramia_site.errors import Conflict


class JobError(Exception):
    """Base of the exceptions a job handler raises on purpose; the message is shown to users."""


class JobFailed(JobError):
    """End the job as failed with this message (no retry)."""


class TransientJobError(JobError):
    """A temporary failure (rate limit, provider down): retry with backoff while attempts remain."""

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds, e.g. from a 429's Retry-After


class JobCancelled(JobError):
    """Raised at a checkpoint once cancellation was requested; the job ends cancelled."""


class JobSuperseded(JobError):
    """This attempt lost the job (presumed dead and taken over): stop without writing."""


class UnknownJobKind(ValueError):
    """No handler is registered under this kind."""


class JobNotCancellable(Conflict):
    """The job already ended (succeeded or failed) and cannot be cancelled."""


class JobNotRetryable(Conflict):
    """Only a failed or cancelled job can be run again."""
