"""Engramia: memory for AI agents. `from engramia import Memory`."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = [
    "EngramiaAPIError",
    "EngramiaConfigError",
    "EngramiaError",
    "EvalResult",
    "FeedbackItem",
    "LearnResult",
    "Match",
    "Memory",
    "__version__",
]

# Django-free and cheap; importing the package must not configure Django or open a database.
_LAZY = {
    "Memory": "engramia.memory",
    "LearnResult": "engramia.types",
    "Match": "engramia.types",
    "EvalResult": "engramia.types",
    "FeedbackItem": "engramia.types",
    "EngramiaError": "engramia.errors",
    "EngramiaConfigError": "engramia.errors",
    "EngramiaAPIError": "engramia.errors",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(module_name), name)
