"""bench.large_model runs end to end at a tiny size: moto behind the throttling proxy, three
fresh-process paths giving the same answer, publish timed against upload_file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_bench_runs_at_a_tiny_size(tmp_path: Path) -> None:
    out = tmp_path / "large.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.large_model", "--runs", "1", "--size-scale", "0.004",
         "--rate-mbps", "50", "--json", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    (run,) = report["runs"]
    for model in ("single-1gb", "external-2.5gb"):
        assert run[model]["same_answer"], run[model]
        assert {"aiaas", "boto3-parallel", "single-stream"} <= set(run[model])
        assert run["publish"][model]["aiaas_s"] > 0
    assert "aiaas/single" in done.stdout and "goal <= 0.5" in done.stdout
