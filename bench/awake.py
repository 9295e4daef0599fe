"""Keep every CPU out of its idle state while a latency benchmark runs.

On this VM an idle vCPU halts, and waking it for the next request costs tens of microseconds,
as much as a small model's whole request. Two servers compared at a steady, light rate then
differ by how often the CPU they run on halts: a server with more going on beside it (a shadow's
replay process) reads faster than one with less. `idle=poll` or `cpupower idle-set -D 0` take
that away on a machine one controls; here a busy loop at SCHED_IDLE on each CPU does: it runs
only when nothing else would, and yields at once to any normal task, so both sides of a
comparison wake from the same state.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

SPIN = """
import os, sys
os.sched_setaffinity(0, {int(sys.argv[1])})
os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
while True:
    pass
"""


@contextlib.contextmanager
def cpus_awake() -> Iterator[int]:
    """One SCHED_IDLE spinner per CPU this process may use while inside; yields how many."""
    cpus = sorted(os.sched_getaffinity(0))
    spinners = [
        subprocess.Popen([sys.executable, "-c", SPIN, str(cpu)], stdin=subprocess.DEVNULL)
        for cpu in cpus
    ]
    try:
        yield len(spinners)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
