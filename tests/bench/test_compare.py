"""The benchmark harness's own logic: wrk parsing, goal verdicts, the report, the built graphs."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from bench.compare import measure, report
from bench.compare.onnx_models import cnn_onnx, transformer_onnx
from bench.compare.workloads import ROOT

WRK_OUTPUT = """Running 2s test @ http://127.0.0.1:1/predict
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.43ms    1.20ms  20.10ms   80.00%
  Latency Distribution
     50%    4.43ms
     75%    5.01ms
     90%    6.20ms
     99%  812.00us
  14226 requests in 2.00s, 3.10MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 4
Requests/sec:   7113.00
Transfer/sec:      1.55MB
"""


def test_parse_wrk_reads_rate_percentiles_and_every_error_kind() -> None:
    figures = measure.parse_wrk(WRK_OUTPUT)
    assert figures == {
        "rps": 7113.0,
        "p50_ms": 4.43,
        "p99_ms": 0.812,
        "requests": 14226.0,
        "errors": 9.0,
    }


def test_parse_wrk_names_what_is_missing() -> None:
    with pytest.raises(ValueError, match="Requests/sec"):
        measure.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


def _server(rps32: float, p99: float, cold: float) -> dict[str, object]:
    level = {"rps": rps32, "p50_ms": p99 / 2, "p99_ms": p99, "requests": 1.0, "errors": 0.0}
    levels = {c: dict(level) for c in ("1", "8", "32", "64")}
    return {
        "cold_ms": cold,
        "cold_runs_ms": [cold],
        "cold_cpu_ms": cold / 2,
        "levels": levels,
        "peak_rss_mib": 70.0,
    }


RESULTS = {
    "meta": {
        "date": "2026-01-01 00:00 UTC",
        "machine": "test box",
        "python": "3.11",
        "wrk": "wrk 4.1",
        "load_average": [0.1, 0.2, 0.3],
        "plan": {
            "concurrency": [1, 8, 32, 64],
            "seconds": 2,
            "warmup_seconds": 1,
            "cold_runs": 1,
            "repeat": 10,
            "quick": True,
        },
        "servers": {
            "aiaas": {"status": "ok", "versions": {"onnxruntime": "1"}},
            "fastapi": {"status": "ok", "versions": {"fastapi": "1"}},
            "bentoml": {"status": "skipped", "reason": "install failed: a | b"},
        },
    },
    "workloads": [
        {
            "key": "mlp",
            "title": "digits-mlp, int8",
            "model": "bench-mlp",
            "source": "built",
            "input": "x FP32 [1, 64]",
            "onnx_bytes": 2048,
        }
    ],
    "results": {
        "mlp": {
            "inprocess": {
                "raw_default_us": 10.0,
                "raw_aiaas_options_us": 9.0,
                "handler_us": 30.0,
                "ratio": 30 / 9,
                "floor_ms": 150.0,
                "handler_ms": 190.0,
            },
            "servers": {
                "aiaas": _server(7000, 8.0, 250),
                "fastapi": _server(2500, 25.0, 550),
                "bentoml": {"skipped": "exited with 1: boom | more"},
            },
        }
    },
}


def test_goals_compare_aiaas_with_the_best_peer() -> None:
    g = report.goals(RESULTS["results"]["mlp"])
    assert g is not None
    assert (g["best"], g["fastest_cold"], g["lowest_p99_peer"]) == ("fastapi",) * 3
    assert g["ratio"] == pytest.approx(2.8)
    assert g["cold_ratio"] == pytest.approx(250 / 550)
    assert (g["throughput_met"], g["p99_met"], g["cold_met"]) == (True, True, True)


def test_goals_are_missed_when_aiaas_is_not_far_enough_ahead() -> None:
    results = copy.deepcopy(RESULTS)
    results["results"]["mlp"]["servers"]["aiaas"] = _server(4000, 30.0, 400)
    g = report.goals(results["results"]["mlp"])
    assert g is not None
    assert (g["throughput_met"], g["p99_met"], g["cold_met"]) == (False, False, False)


def test_goals_need_aiaas_and_a_peer() -> None:
    results = copy.deepcopy(RESULTS)
    del results["results"]["mlp"]["servers"]["fastapi"]
    assert report.goals(results["results"]["mlp"]) is None


def test_report_renders_tables_plots_and_skip_reasons(tmp_path: Path) -> None:
    (tmp_path / report.ANALYSIS).write_text("## Why\n\nhand-written note")
    readme = report.write_report(RESULTS, tmp_path).read_text()
    assert "| digits-mlp, int8 | 7,000 | 2,500 (FastAPI + uvicorn) | 2.80x met |" in readme
    assert "| aiaas serve | 250 | 125 | 4.00 | 8.00 | 7,000 |" in readme
    assert "| BentoML | skipped: exited with 1: boom / more |" in readme
    assert "| BentoML | skipped | install failed: a / b |" in readme
    assert "**30.0 µs** per call" in readme and "**3.33x**" in readme
    assert "0.10 / 0.20 / 0.30" in readme and "Quick run" in readme
    assert readme.rstrip().endswith("hand-written note")
    for png in ("latency_vs_concurrency.png", "cold_start.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_built_graphs_have_the_demo_shapes(tmp_path: Path) -> None:
    cnn = ort.InferenceSession(str(cnn_onnx(tmp_path / "cnn.onnx")))
    (logits,) = cnn.run(None, {"x": np.zeros((3, 1, 8, 8), np.float32)})
    assert logits.shape == (3, 10)
    text = ort.InferenceSession(str(transformer_onnx(tmp_path / "t.onnx")))
    (logits,) = text.run(None, {"tokens": np.ones((2, 32), np.int64)})
    assert logits.shape == (2, 4) and np.isfinite(logits).all()


def test_peak_rss_counts_the_children() -> None:
    code = "import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'x = bytearray(64 << 20); import time; time.sleep(30)']); time.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        deadline = 100
        while deadline and measure.tree_peak_rss_mib(proc.pid) < 64:
            deadline -= 1
            time.sleep(0.05)
        assert measure.tree_peak_rss_mib(proc.pid) >= 64
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


def test_cpu_time_counts_the_children_work() -> None:
    burn = "import time; t = time.process_time(); exec('while time.process_time() - t < 0.3: pass'); time.sleep(30)"
    code = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {burn!r}]); time.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and measure.tree_cpu_ms(proc.pid) < 300:
            time.sleep(0.05)
        assert measure.tree_cpu_ms(proc.pid) >= 300
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


def test_cold_starts_take_turns_and_give_the_ratio_to_the_fastest_peer() -> None:
    """The cold-start-only harness, end to end: real server processes, real first answers.
    Of the built MLP (`--built`): a fresh clone (CI's) would first train the demo spec, ~20
    CPU-seconds that this harness's turns and ratio do not depend on."""
    run = subprocess.run(
        [sys.executable, "-m", "bench.compare.cold", "--starts", "2", "--built"],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert any(line.strip().startswith("aiaas serve") and "median" in line for line in lines)
    assert any(line.strip().startswith("FastAPI + uvicorn") and "median" in line for line in lines)
    ratio = [line for line in lines if "aiaas / fastest peer (FastAPI + uvicorn)" in line]
    assert len(ratio) == 1 and float(ratio[0].split(": ")[1].split("x")[0]) > 0


def test_bad_flags_are_usage_errors_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--starts 0` went on to train models and start peers, then died on StatisticsError (a
    median of no starts); `--report-only` with no results.json was a FileNotFoundError
    traceback; an empty `--servers` measured nothing and wrote that empty report over the last
    one. All are now one-line usage errors (exit 2) before any work."""
    from bench.compare import __main__ as compare_main
    from bench.compare import cold

    def no_work(*_: object) -> None:
        raise AssertionError("measured with a flag it cannot use")

    monkeypatch.setattr(cold, "interpreters", no_work)
    monkeypatch.setattr(cold, "prepare", no_work)
    for main, argv, says in (
        (cold.main, ["cold", "--starts", "0"], "argument --starts: 0 is not a count"),
        (cold.main, ["cold", "--starts", "-3"], "argument --starts: -3 is not a count"),
        (cold.main, ["cold", "--models", ""], "argument --models: name at least one model"),
        (compare_main.main, ["compare", "--servers", ","], "name at least one server"),
        (compare_main.main, ["compare", "--report-only", "--out", str(tmp_path)], "no "),
    ):
        monkeypatch.setattr("sys.argv", argv)
        with pytest.raises(SystemExit) as caught:
            main()
        assert caught.value.code == 2, argv
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err, err
    assert "results.json (a measuring run writes it)" in err
