"""Strict parsing of the environment: a malformed value is an error, never a silent default."""

from __future__ import annotations

import os
from pathlib import Path


class ConfigurationError(Exception):
    """An environment variable holds a value Engramia cannot use."""


# Defaults a process chooses for itself, before its settings are read, for variables its
# environment leaves unset (SDK local mode's connection pool). Unlike os.environ they are not
# passed on to the processes it starts.
process_defaults: dict[str, str] = {}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_str(name: str, default: str | None = None) -> str | None:
    """Return a variable, or the contents of the file named by NAME_FILE (for secrets)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ConfigurationError(f"{name}_FILE={file_name!r} cannot be read: {exc}") from exc
    value = os.environ.get(name) or process_defaults.get(name)
    if value is None or value == "":
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    """Parse a boolean; anything but a recognised spelling is a ConfigurationError."""
    value = env_str(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigurationError(
        f"{name}={value!r} is not a boolean (use one of: {', '.join(sorted(_TRUE | _FALSE))})"
    )


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    """Parse an integer no smaller than minimum."""
    value = env_str(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigurationError(f"{name}={value!r} is not an integer") from None
    if number < minimum:
        raise ConfigurationError(f"{name}={value!r} must be at least {minimum}")
    return number


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """Parse one of a fixed set of words."""
    value = env_str(name, default) or default
    if value not in choices:
        raise ConfigurationError(f"{name}={value!r} must be one of: {', '.join(choices)}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    """Parse a comma-separated list, ignoring blanks."""
    value = env_str(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def engramia_home() -> Path:
    """The data directory (ENGRAMIA_HOME, default ./.engramia), created on first use."""
    home = Path(env_str("ENGRAMIA_HOME", ".engramia") or ".engramia").expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home
