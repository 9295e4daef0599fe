"""The soak at CI size: 2,000 requests at concurrency 64 through `aiaas serve`, and a
50,000-row batch with 1% bad rows. `make soak` runs the full size (bench/soak.py)."""

from __future__ import annotations

from pathlib import Path

from bench.soak import batch_verdict, serve_verdict
from bench.soak_batch import batch_soak
from bench.soak_serve import serve_soak
from tests.s3server import free_port


def test_serve_holds_2000_requests_at_concurrency_64(tmp_path: Path) -> None:
    result = serve_soak(tmp_path, requests=2000, concurrency=64, port=free_port())
    assert serve_verdict(result) == [], result
    assert result["errors"] == 0 and 0 < result["p50_ms"] <= result["p99_ms"]
    print(f"\nserve soak: {result}")


def test_batch_of_50000_rows_with_1_percent_bad_loses_nothing(tmp_path: Path) -> None:
    result = batch_soak(tmp_path, rows=50_000, bad_fraction=0.01)
    assert batch_verdict(result) == [], result
    assert (result["scored"], result["reported"]) == (49_500, 500)
    print(f"\nbatch soak: {result}")


def test_the_verdicts_catch_what_they_guard() -> None:
    """A lost row, a duplicate, an unreported bad row or RSS growth each fail the soak."""
    serve = {"errors": 0, "first_errors": [], "rss_growth_pct": 6.0}
    assert serve_verdict(serve) == ["RSS moved 6.0% after warm-up (goal 5%)"]
    held = {
        "rows": 100,
        "bad_rows": 1,
        "scored": 99,
        "missing_good_rows": 0,
        "duplicates": 0,
        "scored_bad_rows": 0,
        "wrong_predictions": 0,
        "reported_exactly_the_bad_lines": True,
        "every_report_says_why": True,
        "summary": {"status": "succeeded", "rows": 100, "scored_rows": 99, "failed_rows": 1},
    }
    assert batch_verdict(held) == []
    lost = {**held, "scored": 98, "missing_good_rows": 1}
    assert batch_verdict(lost) == ["every good row scored"]
    doubled = {**held, "duplicates": 1}
    assert batch_verdict(doubled) == ["no duplicates"]
    unreported = {**held, "reported_exactly_the_bad_lines": False}
    assert batch_verdict(unreported) == ["every bad row reported, by line"]
