"""Fixtures of the Assistants-compatible API suite: a fake LLM, clients, inline job runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.fakes.llm_servers import FakeLLMServer
from tests.providers.test_llm import ENV_VARIABLES

BASE = "/openai/v1"
VENDOR_STYLES = ("chat", "responses", "anthropic")


def use_llm(monkeypatch: pytest.MonkeyPatch, fake: FakeLLMServer, style: str = "chat") -> None:
    """Point the deployment's LLM (runs and judge) at the fake, in one vendor's wire format."""
    for variable in ENV_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    if style == "anthropic":
        monkeypatch.setenv("ENGRAMIA_LLM", "anthropic")
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.anthropic_base_url)
    else:
        monkeypatch.setenv("ENGRAMIA_LLM", "openai")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
        monkeypatch.setenv("ENGRAMIA_OPENAI_API", style)


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLMServer]:
    """A loopback fake LLM (Chat Completions unless a test switches) answering "Hello there."."""
    with FakeLLMServer(default="Hello there.") as fake:
        use_llm(monkeypatch, fake)
        yield fake


def run_jobs(kind: str = "assistants_run") -> list[Any]:
    """Run every pending job of a kind in this process, oldest first; the jobs afterwards."""
    from jobs.models import Job
    from jobs.services import run_job_inline

    done = []
    while True:
        job = Job.objects.filter(kind=kind, status="pending").order_by("id").first()
        if job is None:
            return done
        done.append(run_job_inline(job))


@pytest.fixture
def api(owner: Any) -> Callable[..., Any]:
    """Call /openai/v1 as the owner: api("post", "/threads", {...}) -> response."""
    client = owner.client()

    def call(method: str, path: str, body: Any = None, **extra: Any) -> Any:
        return getattr(client, method)(
            BASE + path, body, format="json" if body is not None else None, **extra
        )

    return call
