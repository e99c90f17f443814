"""bootstrap and create_api_key behave as CONTRACT.md says, including --json and bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

REPO = Path(__file__).resolve().parents[2]


def test_bootstrap_is_idempotent_and_issues_a_working_owner_key(db, capsys):
    call_command(
        "bootstrap", "--tenant", "acme", "--project", "support", "--email", "o@acme.test", "--json"
    )
    first = json.loads(capsys.readouterr().out)
    assert set(first) >= {"tenant", "project", "api_key", "admin_url"}
    call_command(
        "bootstrap", "--tenant", "acme", "--project", "support", "--email", "o@acme.test", "--json"
    )
    second = json.loads(capsys.readouterr().out)
    assert second["api_key"] != first["api_key"] and "admin_password" not in second
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {first['api_key']}")
    assert client.get("/v1/project").json() == {
        "tenant": "acme",
        "slug": "support",
        "name": "support",
        "read_path": "engramia",
        "embedding_model": "hash:384",
        "instructions": "",
        "llm_provider": "",
        "llm_model": "",
    }
    assert client.patch("/v1/project", {"name": "ok"}, format="json").status_code == 200


def test_create_api_key_json_shape(owner, capsys):
    call_command(
        "create_api_key",
        "--project",
        "acme/support",
        "--role",
        "editor",
        "--name",
        "bot",
        "--email",
        owner.user.email,
        "--json",
    )
    payload = json.loads(capsys.readouterr().out)
    assert set(payload) == {"id", "api_key", "role", "project"}
    assert payload["role"] == "editor" and payload["project"] == "acme/support"


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--project", "nope", "--role", "reader", "--name", "x"], "tenant-slug/project-slug"),
        (["--project", "acme/missing", "--role", "reader", "--name", "x"], "does not exist"),
        (
            [
                "--project",
                "acme/support",
                "--role",
                "owner",
                "--name",
                "x",
                "--email",
                "reader@acme.test",
            ],
            "cannot be owner",
        ),
    ],
)
def test_create_api_key_rejects_bad_input_with_one_line(reader, arguments, message):
    with pytest.raises(CommandError) as raised:
        call_command("create_api_key", *arguments)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_console_script_exits_non_zero_with_one_line_on_bad_configuration(tmp_path):
    env = {**os.environ, "ENGRAMIA_DEBUG": "maybe", "ENGRAMIA_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "engramia.cli", "check"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "engramia: ENGRAMIA_DEBUG='maybe' is not a boolean "
        "(use one of: 0, 1, false, no, off, on, true, yes)"
    ]


def test_unreachable_database_is_one_line(tmp_path):
    env = {
        **os.environ,
        "ENGRAMIA_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "ENGRAMIA_HOME": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "engramia.cli", "serve", "--port", "18999"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("engramia: cannot reach the database")
