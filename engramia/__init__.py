"""Engramia: memory for AI agents. `from engramia import Memory`."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Memory", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy: importing the package must not configure Django or open a database.
    if name == "Memory":
        from engramia.memory import Memory

        return Memory
    raise AttributeError(name)
