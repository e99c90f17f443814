"""Fixtures of the SDK suite: a clean SDK environment, the offline model, a loopback judge."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from agents import set_tracing_disabled
from agents.run import set_default_agent_runner

from tests.fakes.llm_servers import FakeLLMServer

REPO = Path(__file__).resolve().parents[2]
SDK_VARIABLES = (
    "ENGRAMIA_API_URL",
    "ENGRAMIA_API_KEY",
    "ENGRAMIA_PROJECT",
    "ENGRAMIA_TENANT_ID",
    "ENGRAMIA_PROJECT_ID",
    "ENGRAMIA_ACTOR",
)


def load_quickstart() -> ModuleType:
    """examples/quickstart.py as a module (the example is a script, not a package)."""
    name = "engramia_examples_quickstart"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / "quickstart.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def verdict(score: float, feedback: str = "Fine.") -> str:
    """A judge reply in the format the judge prompt asks for."""
    return json.dumps({"score": score, "feedback": feedback})


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """Personas get passwords; real hashing would dominate this suite's time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def sdk_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No SDK variables from the outer environment, no trace export, the default runner back."""
    for variable in SDK_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("ENGRAMIA_LLM", "none")
    set_tracing_disabled(True)
    yield
    set_default_agent_runner(None)


@pytest.fixture
def quickstart() -> ModuleType:
    return load_quickstart()


@pytest.fixture
def offline_model(quickstart: ModuleType) -> Any:
    """Every Runner.run uses this scripted model (what it received is in `.calls`)."""
    provider = quickstart.use_offline_model(quickstart.OfflineModel())
    return provider.model


@pytest.fixture
def judge(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLMServer]:
    """An OpenAI-compatible judge on 127.0.0.1 (ENGRAMIA_LLM=openai pointed at it)."""
    with FakeLLMServer(default=verdict(7, "Default verdict.")) as fake:
        monkeypatch.setenv("ENGRAMIA_LLM", "openai")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
        yield fake


async def orm(query: Any) -> Any:
    """Run an ORM callable from async test code: in a thread that closes its connection after."""
    import asyncio

    from django.db import connections

    def call() -> Any:
        try:
            return query()
        finally:
            connections.close_all()

    return await asyncio.to_thread(call)
