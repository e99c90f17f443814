"""Memory() configuration: mode and scope from arguments or environment, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from engramia import Memory
from engramia.errors import EngramiaConfigError


def test_no_scope_is_a_clear_error():
    with pytest.raises(EngramiaConfigError, match=r"no memory scope.*ENGRAMIA_PROJECT"):
        Memory()


@pytest.mark.parametrize(
    ("project", "message"),
    [
        ("acme", "not of the form tenant-slug/project-slug"),
        ("acme/support/extra", "not of the form"),
        ("Acme/support", "'Acme' is not a valid tenant slug"),
        ("acme/-support", "'-support' is not a valid project slug"),
        ("acme/", "not of the form"),
    ],
)
def test_bad_project_argument_is_rejected(project, message):
    with pytest.raises(EngramiaConfigError, match=message):
        Memory(project)


def test_scope_from_engramia_project(monkeypatch):
    monkeypatch.setenv("ENGRAMIA_PROJECT", "acme/support")
    memory = Memory()
    assert memory.mode == "local" and memory.project == "acme/support"


def test_scope_from_tenant_and_project_ids(monkeypatch):
    monkeypatch.setenv("ENGRAMIA_TENANT_ID", "acme")
    monkeypatch.setenv("ENGRAMIA_PROJECT_ID", "support")
    assert Memory().project == "acme/support"


def test_argument_wins_over_environment(monkeypatch):
    monkeypatch.setenv("ENGRAMIA_PROJECT", "acme/support")
    assert Memory("globex/research").project == "globex/research"


def test_tenant_id_without_project_id_is_an_error(monkeypatch):
    monkeypatch.setenv("ENGRAMIA_TENANT_ID", "acme")
    with pytest.raises(EngramiaConfigError, match="ENGRAMIA_PROJECT_ID is not set"):
        Memory()


def test_bad_slug_in_environment_names_the_variable(monkeypatch):
    monkeypatch.setenv("ENGRAMIA_PROJECT", "acme/Support_Desk")
    with pytest.raises(EngramiaConfigError, match=r"ENGRAMIA_PROJECT.*not a valid project slug"):
        Memory()


def test_api_url_without_key_is_an_error():
    with pytest.raises(EngramiaConfigError, match="no API key"):
        Memory(api_url="http://127.0.0.1:9")


def test_api_url_from_environment_without_key_is_an_error(monkeypatch):
    monkeypatch.setenv("ENGRAMIA_API_URL", "http://127.0.0.1:9")
    with pytest.raises(EngramiaConfigError, match="ENGRAMIA_API_KEY"):
        Memory()


def test_api_key_without_url_is_an_error():
    with pytest.raises(EngramiaConfigError, match="api_key was given without api_url"):
        Memory("acme/support", api_key="eng_x_y")


def test_api_url_must_be_http():
    with pytest.raises(EngramiaConfigError, match="must start with http"):
        Memory(api_url="ftp://example.test", api_key="eng_x_y")


def test_remote_mode_from_environment(monkeypatch):
    monkeypatch.setenv("ENGRAMIA_API_URL", "http://127.0.0.1:9/v1/")
    monkeypatch.setenv("ENGRAMIA_API_KEY", "eng_abc_def")
    memory = Memory()
    assert memory.mode == "remote"
    assert memory._backend.settings.api_url == "http://127.0.0.1:9"
    assert memory._backend.settings.project is None


def test_remote_mode_sends_the_project_slug_for_tenant_wide_keys():
    memory = Memory("acme/support", api_url="http://127.0.0.1:9", api_key="eng_abc_def")
    assert memory._backend._headers()["X-Engramia-Project"] == "support"


def test_actor_is_a_local_mode_option():
    with pytest.raises(EngramiaConfigError, match="actor= applies to local mode"):
        Memory(api_url="http://127.0.0.1:9", api_key="eng_abc_def", actor="someone@acme.test")


def test_a_remote_session_is_created_without_a_request():
    from engramia.sdk.openai_agents import EngramiaSession

    remote = Memory(api_url="http://127.0.0.1:9", api_key="eng_abc_def")  # nothing listens
    session = EngramiaSession("chat-1", remote)
    assert session.session_id == "chat-1" and session.memory.mode == "remote"


def test_importing_the_sdk_does_not_configure_django():
    code = (
        "import sys; import engramia; from engramia import Memory, Match; "
        "import engramia.sdk.openai_agents; import engramia.remote; import engramia.local; "
        "Memory('acme/support'); "
        "print(sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
