"""Soak runs: load held by `aiaas serve`, and a big batch with bad rows; nothing lost.

    python -m bench.soak [--requests 10000] [--concurrency 64] [--rows 1000000]
                         [--bad-fraction 0.01] [--out FILE]

Serve: warm-up, then `--requests` predict requests (three protocol forms) from `--concurrency`
connections at once; zero errors, every answer equal to onnxruntime's, p50/p99 latency, and the
server's RSS after warm-up and at the end (stable within 5%). Batch: a CSV of `--rows` rows of
which `--bad-fraction` are malformed, scored through the batch handler; every good row scored
once, every bad row reported. `make soak` runs the full size; CI runs tests/soak at a reduced
size. Exit status 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.args import count, fraction, whole
from bench.soak_batch import batch_soak
from bench.soak_serve import serve_soak
from tests.s3server import free_port

RSS_GROWTH_GOAL_PCT = 5.0


def serve_verdict(result: dict[str, Any]) -> list[str]:
    """Goals the serve soak missed (empty when it held)."""
    missed = []
    if result["errors"]:
        missed.append(f"{result['errors']} errors, first: {result['first_errors']}")
    if abs(result["rss_growth_pct"]) > RSS_GROWTH_GOAL_PCT:
        missed.append(f"RSS moved {result['rss_growth_pct']}% after warm-up (goal 5%)")
    return missed


def batch_verdict(result: dict[str, Any]) -> list[str]:
    """Goals the batch soak missed: anything lost, doubled, wrong or unreported."""
    good = result["rows"] - result["bad_rows"]
    checks = {
        "every good row scored": result["scored"] == good and not result["missing_good_rows"],
        "no duplicates": result["duplicates"] == 0,
        "no bad row scored": result["scored_bad_rows"] == 0,
        "predictions match onnxruntime": result["wrong_predictions"] == 0,
        "every bad row reported, by line": result["reported_exactly_the_bad_lines"],
        "every report says why": result["every_report_says_why"],
        "summary agrees": result["summary"]
        == {
            "status": "succeeded",
            "rows": result["rows"],
            "scored_rows": good,
            "failed_rows": result["bad_rows"],
        },
    }
    return [name for name, held in checks.items() if not held]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=count, default=10_000)
    parser.add_argument("--concurrency", type=count, default=64)
    parser.add_argument("--rows", type=count, default=1_000_000)
    parser.add_argument("--bad-fraction", type=fraction, default=0.01)
    parser.add_argument(
        "--port", type=whole(0, 65535), default=0, help="serve port (default: a free one)"
    )
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="aiaas-soak-") as tmp:
        work = Path(tmp)
        (work / "serve").mkdir()
        (work / "batch").mkdir()
        serve = serve_soak(
            work / "serve", args.requests, args.concurrency, args.port or free_port()
        )
        batch = batch_soak(work / "batch", args.rows, args.bad_fraction)
    missed = serve_verdict(serve) + batch_verdict(batch)
    report = {"serve": serve, "batch": batch, "missed": missed}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
