"""`python -m bench.publish_upload` on a small file: both uploads go through moto's server in
parts (multipart, the CRC32s taken beforehand for aiaas), and the ratio is printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_small_run_times_both_uploads_and_prints_the_ratio() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.publish_upload", "--size-mb", "17", "--pairs", "2",
         "--rate-mbps", "0"],
        cwd=REPO,
        env=os.environ | {"AIAAS_TRANSFER_PART_MB": "5"},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "17 MB, 2 pairs, 0 MB/s a connection (aiaas: parts of 5 MB, 16 at once)" in done.stdout
    assert re.search(r"aiaas +wall [\d.]+-[\d.]+ s", done.stdout), done.stdout
    assert re.search(r"upload_file +wall [\d.]+-[\d.]+ s", done.stdout), done.stdout
    assert re.search(r"aiaas vs upload_file speed \(goal >= 1\): \d+\.\d\dx", done.stdout)


def test_no_pairs_is_refused_at_once() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.publish_upload", "--pairs", "0"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "argument --pairs: 0 is not a count" in done.stderr
