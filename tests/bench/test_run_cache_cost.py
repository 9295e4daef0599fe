"""`python -m bench.run_cache_cost` in a small run: the predict function's run of the MLP timed
alone, inside the gateway app's requests and after other memory traffic, as ratios."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_small_run_prints_each_case_against_the_run_alone() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.run_cache_cost", "--calls", "50", "--rounds", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "one 1x64 row, medians of 2 rounds pooled" in done.stdout
    for case in (
        "alone, in a loop",
        "inside the app's requests",
        "after reading 256 KB of other memory",
        "after reading 1024 KB of other memory",
    ):
        assert re.search(rf"  {case} +[\d.]+ us +[\d.]+x", done.stdout), done.stdout
