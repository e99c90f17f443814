"""Counting the PostgreSQL connections psycopg opens in this process (for child programs of the
tests and benchmarks that check how often local mode connects).

Both ways in are wrapped: `psycopg.connect`, which Django calls without a pool, and
`Connection.connect`, which psycopg's pool calls.
"""

from __future__ import annotations

from typing import Any


def count_connects() -> list[int]:
    """Patch psycopg; returns a list that gets one item per connection opened from now on."""
    import psycopg

    opened: list[int] = []
    module_connect = psycopg.connect
    class_connect = psycopg.Connection.connect.__func__  # type: ignore[attr-defined]

    def counted(*args: Any, **kwargs: Any) -> Any:
        opened.append(1)
        return module_connect(*args, **kwargs)

    def counted_class(cls: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(1)
        return class_connect(cls, *args, **kwargs)

    psycopg.connect = counted  # type: ignore[assignment]
    psycopg.Connection.connect = classmethod(counted_class)  # type: ignore[assignment,method-assign]
    return opened
