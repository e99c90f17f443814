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


@pytest.fixture
def job_runner(transactional_db: Any) -> Iterator[None]:
    """A thread that runs pending jobs of the API (runs, file indexing) as a worker would."""
    import threading

    from django.db import connection

    stop = threading.Event()

    def work() -> None:
        try:
            while not stop.is_set():
                if not (run_jobs() or run_jobs("assistants_index_file")):
                    stop.wait(0.05)
        finally:
            connection.close()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=20)


@pytest.fixture
def sdk(asgi_server: str, owner: Any) -> Any:
    """The official openai SDK, pointed at the live ASGI server with the owner's key."""
    import openai

    return openai.OpenAI(base_url=f"{asgi_server}{BASE}", api_key=owner.secret, max_retries=0)


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def new_assistant(api: Callable[..., Any], **fields: Any) -> dict[str, Any]:
    """Create an assistant through the API; its body."""
    response = api("post", "/assistants", {"model": "gpt-test", **fields})
    assert response.status_code == 200, response.content
    return dict(response.json())


def new_thread(api: Callable[..., Any], *texts: str, **fields: Any) -> dict[str, Any]:
    """Create a thread holding user messages with these texts; its body."""
    messages = [{"role": "user", "content": text} for text in texts]
    response = api("post", "/threads", {"messages": messages, **fields})
    assert response.status_code == 200, response.content
    return dict(response.json())


def read_events(response: Any) -> list[tuple[str, Any]]:
    """The (event, data) pairs of a streamed answer read whole through the test client."""
    import json

    assert response["Content-Type"] == "text/event-stream", response.content
    events = []
    for block in b"".join(response).decode().split("\n\n"):
        if not block.strip():
            continue
        name, data = block.split("\n", 1)
        payload = data.removeprefix("data: ")
        events.append(
            (name.removeprefix("event: "), payload if payload == "[DONE]" else json.loads(payload))
        )
    return events


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """Personas get passwords; real hashing would dominate this suite's time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
