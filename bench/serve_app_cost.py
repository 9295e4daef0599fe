"""CPU time of `aiaas serve`'s own work per request, in process, against the floor's.

    python -m bench.serve_app_cost [--calls 4000] [--rounds 9] [--profile]

The gateway app of one worker (`build_app`, as `aiaas serve` builds it, on a published MLP)
answers a `POST /models/<m>/predict` with one 1x64 FP32 row through a fake granian protocol:
the RSGI app, the event translation, the predict handler and the metrics, without HTTP.
Against it, the floor app's own work (orjson + onnxruntime, bench/peers/floor_app.py). Thread
CPU time, the best of `--rounds` alternating rounds: the machine is shared, and wall time of a
round moves with the neighbours. `--profile` adds cProfile's top functions (which inflate).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time
from pathlib import Path
from typing import Any

import orjson

from bench.args import count
from bench.models import publish_mlp
from bench.peers.floor_app import Model
from bench.scratch import scratch_dir

MODEL = "bench-mlp"


class _Headers:
    """Granian's RSGI headers, as the app reads them: the readable values, and every name."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items
        self._names = frozenset(name for name, _ in items)

    def items(self) -> list[tuple[str, str]]:
        return self._items

    def __contains__(self, name: str) -> bool:
        return name in self._names


class _Scope:
    proto, method, query_string, client = "http", "POST", "", "127.0.0.1:50000"
    path = f"/models/{MODEL}/predict"

    def __init__(self, body: bytes) -> None:
        self.headers = _Headers(
            [("host", "127.0.0.1:8080"), ("content-length", str(len(body))),
             ("content-type", "application/json")]
        )  # fmt: skip


class _Protocol:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.status = 0

    async def __call__(self) -> bytes:
        return self.body

    def response_bytes(self, status: int, headers: Any, body: bytes) -> None:
        self.status = status


def serve_app(work: Path) -> Any:
    from infra.cli.local_commands import local_overrides
    from infra.cli.serve_app import ServeConfig, build_app
    from infra.local.server import ServerLimits

    store = str(work / "store")
    os.environ.setdefault("AIAAS_CACHE_DIR", str(work / "cache"))
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    env = local_overrides(store, {"AIAAS_DISABLE_METRICS": "true"})  # as `aiaas serve`
    app = build_app(ServeConfig(None, store, env, [MODEL], "@production", None, ServerLimits()))
    app.gateway.warm_up(0)
    app.gateway.metrics.start()
    return app


async def measure(app: Any, floor: Model, body: bytes, calls: int, rounds: int) -> None:
    scope, protocol = _Scope(body), _Protocol(body)

    async def answer(n: int) -> None:
        for _ in range(n):
            await app(scope, protocol)

    await answer(2000)
    assert protocol.status == 200, protocol.status
    ours = theirs = float("inf")
    for _ in range(rounds):
        began = time.thread_time()
        await answer(calls)
        ours = min(ours, (time.thread_time() - began) / calls)
        began = time.thread_time()
        for _ in range(calls):
            floor.answer(body)
        theirs = min(theirs, (time.thread_time() - began) / calls)
    print(f"aiaas serve app, answer():    {ours * 1e6:6.1f} us CPU a request")
    print(f"floor app, orjson + session:  {theirs * 1e6:6.1f} us CPU a request")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=count, default=4000)
    parser.add_argument("--rounds", type=count, default=9)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    work = scratch_dir("aiaas-app-cost-")
    model_path = publish_mlp(work / "store", MODEL)
    app, floor = serve_app(work), Model(str(model_path))
    body = orjson.dumps({"inputs": [[0.5] * 64]})
    import uvloop  # what granian runs the app on (Loops.auto)

    uvloop.run(measure(app, floor, body, args.calls, args.rounds))
    if args.profile:
        scope, protocol = _Scope(body), _Protocol(body)
        profile = cProfile.Profile()

        async def answer() -> None:
            for _ in range(args.calls):
                await app(scope, protocol)

        profile.enable()
        uvloop.run(answer())
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
