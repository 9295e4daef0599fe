"""`python -m bench.compare [--quick]`: aiaas against the servers users would pick instead.

Serves the demo's MLP, CNN and text Transformer through `aiaas serve`, the predict handler
in-process, FastAPI + uvicorn (from the project's venv), KServe, MLServer and BentoML (in their
own venvs under .venv-peers/, installed on first use), measures cold start, latency and throughput at several
concurrencies with wrk, and peak RSS, then writes docs/benchmarks/ (README.md, PNGs, JSON).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from bench.bytecode import compile_checkout
from bench.compare.report import write_report
from bench.compare.run import FULL, QUICK, parse_names, run
from bench.compare.servers import SERVERS
from bench.compare.workloads import KINDS, ROOT, prepare

DOCS = ROOT / "docs" / "benchmarks"


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="2 s per level, 1 cold start")
    parser.add_argument(
        "--models",
        type=lambda v: parse_names(v, KINDS, "model"),
        default=list(KINDS),
        help=f"comma-separated, default {','.join(KINDS)}",
    )
    parser.add_argument(
        "--servers",
        type=lambda v: parse_names(v, SERVERS, "server"),
        default=list(SERVERS),
        help=f"default {','.join(SERVERS)}",
    )
    parser.add_argument("--out", type=Path, default=DOCS, help="report folder (docs/benchmarks)")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="re-render the report from OUT/results.json without measuring",
    )
    args = parser.parse_args()
    compile_checkout()  # a fresh process must not time compiling our modules
    results_file = args.out / "results.json"
    if args.report_only and not results_file.is_file():
        parser.error(f"--report-only: no {results_file} (a measuring run writes it)")
    if args.report_only:
        write_report(json.loads(results_file.read_text()), args.out)
        return
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install -y wrk")
    work = Path(tempfile.mkdtemp(prefix="aiaas-compare-"))
    print(f"work dir (server logs, generated models): {work}", flush=True)
    results = run(prepare(args.models, work), args.servers, QUICK if args.quick else FULL, work)
    args.out.mkdir(parents=True, exist_ok=True)
    results_file.write_text(json.dumps(results, indent=1) + "\n")
    write_report(results, args.out)
    print(f"\nreport: {args.out / 'README.md'}")


if __name__ == "__main__":
    main()
