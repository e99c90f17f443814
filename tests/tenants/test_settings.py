"""Settings come from the environment, strictly parsed; secrets can come from *_FILE."""

import pytest

from engramia_site.env import ConfigurationError, env_bool, env_int, env_str


def test_bad_boolean_is_an_error_not_false(monkeypatch):
    monkeypatch.setenv("ENGRAMIA_DEBUG", "ture")
    with pytest.raises(ConfigurationError, match="ENGRAMIA_DEBUG"):
        env_bool("ENGRAMIA_DEBUG", False)
    monkeypatch.setenv("ENGRAMIA_DEBUG", "Yes")
    assert env_bool("ENGRAMIA_DEBUG", False) is True


def test_secret_from_file(monkeypatch, tmp_path):
    secret = tmp_path / "key"
    secret.write_text("s3cret-value\n")
    monkeypatch.setenv("ENGRAMIA_SECRET_KEY_FILE", str(secret))
    assert env_str("ENGRAMIA_SECRET_KEY") == "s3cret-value"
    monkeypatch.setenv("ENGRAMIA_SECRET_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="cannot be read"):
        env_str("ENGRAMIA_SECRET_KEY")


def test_integers_are_validated(monkeypatch):
    monkeypatch.setenv("ENGRAMIA_WORKERS", "two")
    with pytest.raises(ConfigurationError, match="not an integer"):
        env_int("ENGRAMIA_WORKERS", 1)
    monkeypatch.setenv("ENGRAMIA_WORKERS", "0")
    with pytest.raises(ConfigurationError, match="at least 1"):
        env_int("ENGRAMIA_WORKERS", 1, minimum=1)


def test_production_defaults(settings):
    from django.conf import settings as live

    assert live.DEBUG is False
    assert live.SESSION_COOKIE_HTTPONLY is True
    assert "*" not in live.ALLOWED_HOSTS


def test_a_redis_url_without_the_redis_package_is_a_clear_error(tmp_path):
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "ENGRAMIA_REDIS_URL": "redis://127.0.0.1:6390/0",
        "ENGRAMIA_HOME": str(tmp_path),
        "ENGRAMIA_DATABASE_URL": "postgresql://unused@127.0.0.1:1/unused",
    }
    # The package hidden, whether or not this environment has it installed.
    code = "import sys; sys.modules['redis'] = None; import engramia_site.settings"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "ENGRAMIA_REDIS_URL is set but the redis package is not installed" in done.stderr
    assert "engramia[redis]" in done.stderr


def _settings_in_subprocess(tmp_path, code, **variables):
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "ENGRAMIA_HOME": str(tmp_path),
        "ENGRAMIA_DATABASE_URL": "postgresql://unused@127.0.0.1:1/unused",
    }
    env.pop("ENGRAMIA_AUTH_FAILURE_THROTTLE", None)
    env.update(variables)
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def test_failed_authentication_is_throttled_at_30_a_minute_by_default(tmp_path):
    code = "import engramia_site.settings as s; print(s.ENGRAMIA_AUTH_FAILURE_THROTTLE)"
    done = _settings_in_subprocess(tmp_path, code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "30/min"


def test_a_bad_auth_failure_throttle_is_a_clear_error(tmp_path):
    done = _settings_in_subprocess(
        tmp_path, "import engramia_site.settings", ENGRAMIA_AUTH_FAILURE_THROTTLE="thirty"
    )
    assert done.returncode != 0
    assert "ENGRAMIA_AUTH_FAILURE_THROTTLE='thirty'" in done.stderr


def test_the_auth_failure_rate_is_read_per_request():
    from django.test import override_settings

    from tenants.api.throttling import auth_failure_rate

    with override_settings(ENGRAMIA_AUTH_FAILURE_THROTTLE="5/hour"):
        assert auth_failure_rate() == (5, 3600)
    with override_settings(ENGRAMIA_AUTH_FAILURE_THROTTLE=""):
        assert auth_failure_rate() is None


@pytest.mark.parametrize(("value", "prepared"), [(None, "True"), ("0", "False"), ("1", "True")])
def test_prepared_statements_are_on_unless_turned_off(tmp_path, value, prepared):
    # On: tenants.statements.bound_cursor's statements are prepared at their first use.
    # Off (PgBouncer in transaction mode before 1.22): they bind server-side, unprepared.
    code = "import engramia_site.settings as s; print(s.DB_PREPARED_STATEMENTS)"
    variables = {} if value is None else {"ENGRAMIA_DB_PREPARED_STATEMENTS": value}
    done = _settings_in_subprocess(tmp_path, code, **variables)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == prepared
