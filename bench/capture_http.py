"""What callers of a real `aiaas serve` see with data capture on vs off: p50/p99 over HTTP.

    python -m bench.capture_http [--sample 1.0] [--rate 2000] [--runs 3] [--blocks 4]
                                 [--block-s 3] [--code DIR]

The MLP of bench.shadow_latency (64->256->256->10), one row of simple JSON a request, published
in two stores alike; capture is a model's setting, so one store has it at `--sample` and the
other off. Two `aiaas serve` processes (the real CLI, one worker each, drift on in both) take
turns in blocks, off first in one pair and on first in the next, paced from one connection as
bench.shadow_http does (latency from each request's scheduled time, no coordinated omission).
Reported per run: both sides' p50 and p99 over all requests, their ratio, and the ratio of the
blocks' median p99s (one stall of the shared machine sets a pooled p99, not that median).
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from pathlib import Path

from bench.args import checkout
from bench.awake import cpus_awake
from bench.models import mlp_onnx, publish_classifier
from bench.shadow_http import (
    ROOT,
    add_run_flags,
    one_run,
    paced,
    pin_client,
    print_run,
    request_bodies,
    start,
    stop,
)
from functions.runtime.capture.setting import set_capture
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_run_flags(parser, back_to_back=False)
    parser.add_argument("--code", type=checkout, default=ROOT, help="the checkout the servers run")
    args = parser.parse_args()
    with cpus_awake() if args.awake else contextlib.nullcontext(0):
        pin_client(separate=args.awake)
        measure(args)


def measure(args: argparse.Namespace) -> None:
    bodies = request_bodies()
    with tempfile.TemporaryDirectory() as root:
        stores = {case: Path(root) / case / "store" for case in ("off", "on")}
        model = mlp_onnx(Path(root) / "m.onnx")
        for store in stores.values():
            publish_classifier(store, "m", model)
        set_capture(Registry(LocalStore(stores["on"])), "m", sample=args.sample, actor="bench")
        servers = {case: start(store, "@production", args.code) for case, store in stores.items()}
        ports = {case: port for case, (_, port) in servers.items()}
        try:
            for port in ports.values():  # warm: model loaded, capture setting read
                paced(port, bodies, 1000, 1)
            for run in range(args.runs):
                f = one_run(ports, bodies, args, settle=False)
                lines = sum(
                    len(LocalStore(stores["on"]).get_bytes(k).splitlines())
                    for k in LocalStore(stores["on"]).list_keys("capture/m")
                )
                print_run(run, f, f"lines captured so far {lines}")
        finally:
            stop(servers)


if __name__ == "__main__":
    main()
