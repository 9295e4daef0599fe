"""bench.large_model runs end to end at a tiny size: moto behind the throttling proxy, three
fresh-process paths giving the same answer, publish timed against upload_file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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


def test_publish_only_times_publish_alone(tmp_path: Path) -> None:
    out = tmp_path / "publish.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.large_model", "--runs", "2", "--size-scale", "0.004",
         "--publish-only", "--json", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    runs = json.loads(out.read_text())["runs"]
    assert len(runs) == 2 and all(
        set(run) == {"load_before", "publish", "load_after"} for run in runs
    )
    for model in ("single-1gb", "external-2.5gb"):
        assert f"{model}: publish vs upload_file (goal >= 1) median" in done.stdout
        assert all(run["publish"][model]["ratio"] > 0 for run in runs)


def test_bad_flags_are_usage_errors_before_moto_starts(monkeypatch: Any, capsys: Any) -> None:
    """`--size-scale 0` and `--runs 0` started moto and the proxy and then failed deep inside
    (or measured nothing); now a one-line usage error (exit 2) naming the flag."""
    from bench import large_model

    def no_work(*_: object, **__: object) -> str:
        raise AssertionError("started with a flag it cannot use")

    monkeypatch.setattr(large_model.tempfile, "mkdtemp", no_work)
    for argv, says in (
        (["--size-scale", "0"], "argument --size-scale: give a number above 0"),
        (["--rate-mbps", "-5"], "argument --rate-mbps: give a number above 0"),
        (["--runs", "0"], "argument --runs: 0 is not a count"),
    ):
        with pytest.raises(SystemExit) as caught:
            large_model.main(argv)
        assert caught.value.code == 2, argv
        assert says in capsys.readouterr().err
