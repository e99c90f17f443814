"""CPU seconds spent by process trees (user + system, reaped children included), from /proc.

On a machine shared with other work, wall times grow with the load; the CPU a request costs the
site does not, so the bench reports both.
"""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stats() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds of the process and its reaped children)."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue  # gone since the listing
        fields = text[text.rindex(")") + 2 :].split()
        # fields[1] is the parent; [11:15] utime, stime, cutime, cstime (in clock ticks).
        stats[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / TICKS)
    return stats


def cpu_seconds(*roots: int) -> float:
    """CPU seconds of these processes and all their live and reaped descendants."""
    stats = _stats()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    total, todo = 0.0, [root for root in roots if root in stats]
    while todo:
        pid = todo.pop()
        total += stats[pid][1]
        todo.extend(children.get(pid, []))
    return total


def postmaster_pid(pgdata: Path) -> int:
    """The embedded PostgreSQL's postmaster (its backends are its children)."""
    return int((pgdata / "postmaster.pid").read_text().split()[0])
