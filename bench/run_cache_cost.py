"""What the same `session.run` costs alone, between the gateway app's requests, and after other
memory traffic: why the app's in-process cost does not carry over to a server under load.

    python -m bench.run_cache_cost [--calls 3000] [--rounds 7]

The MLP's weights (~340 KB) stay in a core's cache while nothing else runs: a run in a tight
loop reads them from there. Between two runs a server does other work (the gateway app, the
predict handler, granian, the kernel's sockets), whose memory traffic evicts part of them, and
the next run reads them again from further away. Measured in one process, each the median of
the runs of `--rounds` interleaved rounds (`--calls` runs a case a round), pooled:
- the predict function's own `LoadedModel.run` called in a loop (the same object and feeds);
- the same call timed inside the gateway app's requests (`bench.serve_app_cost`'s app, a fake
  granian protocol, no HTTP);
- the same call after reading 256 KB and 1 MB of other memory (a stand-in for a bigger app).
A server under load adds granian, the kernel and the load generator on the other core, so
`aiaas serve`'s own record of a request (`bench.serve_throughput`) is higher still.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from bench.args import count
from bench.models import publish_mlp
from bench.scratch import scratch_dir
from bench.serve_app_cost import MODEL, _Protocol, _Scope, serve_app
from functions.runtime.model import LoadedModel

TOUCHED_KB = (256, 1024)


class _TimedRuns:
    """Wraps `LoadedModel.run` (the class's, so the app's instance is timed where it runs)."""

    def __init__(self) -> None:
        self.original = LoadedModel.run
        self.times_ns: list[int] = []
        self.last: tuple[LoadedModel, Any, Any] | None = None

    def install(self) -> None:
        original, times = self.original, self.times_ns

        def run(model: LoadedModel, feeds: Any, wanted: Any) -> Any:
            self.last = (model, feeds, wanted)
            began = time.perf_counter_ns()
            result = original(model, feeds, wanted)
            times.append(time.perf_counter_ns() - began)
            return result

        LoadedModel.run = run  # type: ignore[method-assign,assignment]


def _timed(call: Callable[[], object], before: Callable[[], object] | None, n: int) -> list[int]:
    times = []
    for _ in range(n):
        if before is not None:
            before()
        began = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - began)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=count, default=3000)
    parser.add_argument("--rounds", type=count, default=7)
    args = parser.parse_args()
    work = scratch_dir("aiaas-run-cache-")
    publish_mlp(work / "store", MODEL)
    runs = _TimedRuns()
    runs.install()
    app = serve_app(work)
    body = orjson.dumps({"inputs": [[0.5] * 64]})
    scope, protocol = _Scope(body), _Protocol(body)

    async def requests(n: int) -> None:
        for _ in range(n):
            await app(scope, protocol)

    loop = asyncio.new_event_loop()
    loop.run_until_complete(requests(500))
    assert protocol.status == 200 and runs.last is not None, protocol.status
    model, feeds, wanted = runs.last
    junk = {kb: np.ones(kb * 256, dtype=np.float32) for kb in TOUCHED_KB}
    alone = functools.partial(runs.original, model, feeds, wanted)
    samples: dict[str, list[int]] = {"alone, in a loop": [], "inside the app's requests": []}
    samples.update({f"after reading {kb} KB of other memory": [] for kb in TOUCHED_KB})
    for _ in range(args.rounds):
        samples["alone, in a loop"] += _timed(alone, None, args.calls)
        runs.times_ns.clear()
        loop.run_until_complete(requests(args.calls))
        samples["inside the app's requests"] += runs.times_ns
        for kb, array in junk.items():
            samples[f"after reading {kb} KB of other memory"] += _timed(
                alone, array.sum, args.calls
            )
    loop.close()
    base = statistics.median(samples["alone, in a loop"])
    print(
        f"\nLoadedModel.run of the MLP 64-256-256-10, one 1x64 row, medians of {args.rounds} rounds"
        " pooled"
    )
    for name, times in samples.items():
        median = statistics.median(times)
        print(f"  {name:38} {median / 1e3:7.2f} us   {median / base:5.2f}x")


if __name__ == "__main__":
    main()
