"""CPU time of a server's processes and threads, read from /proc (Linux), for a bench to say what
a request costs the server, not only how many it answered.

A one-worker Python server answers at most as many requests a second as its event loop's thread
has CPU for: throughput is ~1 / (that thread's CPU time a request) once the thread is saturated.
`snapshot` reads every thread of a process and of its children (granian's supervisor forks the
worker that serves), so the busiest thread over a turn of load is the loop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds over a span: the whole tree of processes, and its busiest thread."""

    total_s: float
    busiest_thread_s: float


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (by each process's parent id)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def snapshot(pid: int) -> dict[tuple[int, int], float]:
    """CPU seconds (user + system) so far of every thread in `pid`'s process tree, by (pid, tid).
    Empty where /proc is not there (not Linux): the bench then prints no CPU columns."""
    threads: dict[tuple[int, int], float] = {}
    for process in _tree(pid):
        try:
            tids = os.listdir(f"/proc/{process}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                stat = Path(f"/proc/{process}/task/{tid}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            threads[(process, int(tid))] = (int(fields[11]) + int(fields[12])) / TICKS_S
    return threads


def used(before: dict[tuple[int, int], float], after: dict[tuple[int, int], float]) -> CpuUse:
    """The CPU spent between two snapshots (a thread that started meanwhile counts from zero)."""
    spent = [seconds - before.get(key, 0.0) for key, seconds in after.items()]
    return CpuUse(sum(spent), max(spent, default=0.0))
