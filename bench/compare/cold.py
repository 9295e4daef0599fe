"""Cold starts only, servers taking turns: `python -m bench.compare.cold`.

The full harness starts each server `cold_runs` times in a row (5, or 1 with `--quick`), so a
change in the neighbours' load between two servers' turns moves their ratio. Here every round
starts each server once, in an order that flips each round, and the ratio is of the medians:

    python -m bench.compare.cold --starts 7 --servers aiaas,fastapi --models mlp

Cold start is spawn to the first correct answer (`measure.first_answer_s`), as in the report.
`--built` serves the graph of each model's shape built with onnx.helper rather than the trained
demo model (which a fresh clone trains first, once): the start is of the same shape either way.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from bench.args import count
from bench.bytecode import compile_checkout
from bench.compare.measure import first_answer_s, free_ports, start, stop
from bench.compare.run import interpreters, parse_names, say
from bench.compare.servers import SERVERS, base_env
from bench.compare.workloads import KINDS, Workload, prepare
from bench.scratch import scratch_dir


def cold_starts(
    w: Workload, pythons: dict[str, Path], starts: int, work: Path
) -> dict[str, list[float]]:
    """Milliseconds to the first correct answer, `starts` per server, taking turns."""
    times: dict[str, list[float]] = {key: [] for key in pythons}
    order = list(pythons)
    for round_ in range(starts):
        for key in order if round_ % 2 == 0 else order[::-1]:
            server, ports = SERVERS[key], free_ports(3)
            launch = server.launch(w, pythons[key], ports, work)
            running = start(launch, ports[0], base_env(), work / "logs" / f"{w.key}-{key}.log")
            try:
                seconds, _cpu_ms = first_answer_s(running, server, w, launch)
            finally:
                stop(running)
            times[key].append(seconds * 1e3)
    return times


def report(w: Workload, times: dict[str, list[float]]) -> None:
    medians = {key: statistics.median(ms) for key, ms in times.items()}
    say(f"\n== {w.title}")
    for key, ms in times.items():
        say(
            f"  {SERVERS[key].title:22s} median {medians[key]:6.0f} ms  ({min(ms):.0f}-{max(ms):.0f})"
        )
    peers = {key: m for key, m in medians.items() if key != "aiaas"}
    if "aiaas" in medians and peers:
        fastest = min(peers, key=peers.__getitem__)
        say(
            f"  aiaas / fastest peer ({SERVERS[fastest].title}): "
            f"{medians['aiaas'] / peers[fastest]:.3f}x (goal <= 0.5x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.compare.cold",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--starts", type=count, default=7, help="starts per server (default 7)")
    parser.add_argument(
        "--servers",
        type=lambda v: parse_names(v, SERVERS, "server"),
        default=["aiaas", "fastapi"],
        help="comma-separated, default aiaas,fastapi",
    )
    parser.add_argument(
        "--models",
        type=lambda v: parse_names(v, KINDS, "model"),
        default=["mlp"],
        help=f"comma-separated from {','.join(KINDS)}, default mlp",
    )
    parser.add_argument(
        "--built",
        action="store_true",
        help="serve the onnx.helper graph of each model's shape, never training the demo spec",
    )
    args = parser.parse_args()
    compile_checkout()  # a fresh process must not time compiling our modules
    work = scratch_dir("aiaas-cold-")
    (work / "logs").mkdir()
    pythons, _status = interpreters(args.servers)
    for w in prepare(args.models, work, train=not args.built):
        report(w, cold_starts(w, pythons, args.starts, work))


if __name__ == "__main__":
    main()
