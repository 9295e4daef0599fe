"""`aiaas serve --workers N`: how many this machine can run. `--workers 1000` was accepted and
forked workers until a 24 GB machine ran out of memory (each worker is a whole process, with its
own copy of every model it serves); a worker beyond the CPUs only waits for one."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from infra.cli.arg_types import count

WORKERS_PER_CPU = 4  # room for workers waiting on the store or on I/O, not for hundreds
# What one idle worker holds of its own before it loads a model: measured 45 MiB private,
# 55 MiB PSS (Python, granian, onnxruntime; `aiaas serve --workers 3`, one small model).
WORKER_BYTES = 50 * 1024 * 1024
MIB = 1024 * 1024


def serve_workers(text: str) -> int:
    """An argparse type: 1 to WORKERS_PER_CPU per usable CPU, and no more than the memory
    available holds before any model is loaded."""
    value = count(text)
    cpus = usable_cpus()
    most = WORKERS_PER_CPU * cpus
    if value > most:
        raise argparse.ArgumentTypeError(
            f"{value} is more than {most}, {WORKERS_PER_CPU} per CPU this process may use "
            f"({cpus}): more would only wait for a CPU, each holding its own copy of the models"
        )
    available = available_memory()
    if available is not None and value * WORKER_BYTES > available:
        raise argparse.ArgumentTypeError(
            f"{value} workers take about {value * WORKER_BYTES // MIB} MiB before they load a "
            f"model (~{WORKER_BYTES // MIB} MiB each), more than the {available // MIB} MiB "
            "available: give fewer"
        )
    return value


def usable_cpus() -> int:
    """The CPUs this process may run on (a container's cpuset, `taskset`)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


def available_memory() -> int | None:
    """Bytes this process may still take: MemAvailable, or a cgroup v2 memory limit (a
    container's) when lower; None where neither can be read. The limit as a whole, not less
    what the cgroup holds now: that counts page cache, which a worker's start reclaims."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text(encoding="ascii").strip()
        if limit != "max":
            found.append(int(limit))
    except (OSError, ValueError):
        pass
    return min(found) if found else None
