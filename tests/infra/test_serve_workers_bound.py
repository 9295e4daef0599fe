"""`aiaas serve --workers N` within what the machine runs: `--workers 1000` was accepted and
forked workers until a 24 GB machine ran out of memory."""

from __future__ import annotations

import os
from pathlib import Path

from tests.infra.test_serve_operator import run_serve
from tests.s3server import free_port

WORKERS_PER_CPU = 4  # infra/cli/serve_workers.py


def test_more_workers_than_the_cpus_run_is_a_usage_error(tmp_path: Path) -> None:
    cpus = len(os.sched_getaffinity(0))
    most = WORKERS_PER_CPU * cpus
    port = str(free_port())
    done = run_serve(tmp_path / "store", "--port", port, "--workers", str(most + 1), timeout=30)
    assert done.returncode == 2
    line = done.stderr.splitlines()[-1]
    by_cpus = (
        f"aiaas serve: error: argument --workers: {most + 1} is more than {most}, "
        f"{WORKERS_PER_CPU} per CPU this process may use ({cpus}): more would only wait for a "
        "CPU, each holding its own copy of the models"
    )
    # Many CPUs and little memory: the memory's bound comes first.
    by_memory = f"aiaas serve: error: argument --workers: {most + 1} workers take about "
    assert line == by_cpus or line.startswith(by_memory), line
    assert "Traceback" not in done.stderr and done.stdout == ""
