"""How soon a running `aiaas serve` follows `aiaas promote` / `aiaas rollback`, and what the
check that makes it follow costs each request.

    python -m bench.alias_switch [--switches 10] [--calls 200000]

Publishes two versions of the reference MLP with the CLI, starts `aiaas serve` with
AIAAS_ALIAS_TTL=3600 (so only the per-request check can switch it), then alternates
`aiaas promote` and `aiaas rollback`, each in its own process, as a user would. After each the
very next request must answer with the new version. Prints: switches seen on the next request,
the latency of that first request against steady ones, and, in process, the cost of
`ServedModel.current()` for an alias and for the bare name (both check the registry) against a
pinned version (no check): the difference is the check.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

import httpx

from bench.args import count
from bench.models import mlp_onnx
from bench.serve_throughput import wait_ready
from tests.s3server import free_port

MODEL = "switch-mlp"
ROW = {"inputs": [[float(i % 17) for i in range(64)]]}
LABELS = ",".join(str(i) for i in range(10))


def aiaas(store: Path, *argv: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "infra.cli.main", "--store", str(store), *argv],
        check=True,
        capture_output=True,
    )


def ask(client: httpx.Client) -> tuple[str, float]:
    start = time.perf_counter()
    answer = client.post(f"/models/{MODEL}/predict", json=ROW)
    elapsed = time.perf_counter() - start
    answer.raise_for_status()
    return str(answer.json()["version"]), elapsed


def over_http(store: Path, switches: int) -> None:
    port = free_port()
    env = {**os.environ, "AIAAS_ALIAS_TTL": "3600", "AIAAS_CACHE_DIR": str(store.parent / "c")}
    command = [sys.executable, "-m", "infra.cli.main", "--store", str(store), "serve"]
    server = subprocess.Popen([*command, "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}/v2/health/ready")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            steady = [ask(client)[1] for _ in range(50)]
            firsts, seen = [], 0
            for i in range(switches):
                want = "2" if i % 2 == 0 else "1"
                aiaas(store, *(["promote", MODEL, "2"] if want == "2" else ["rollback", MODEL]))
                version, elapsed = ask(client)
                seen += version == want
                firsts.append(elapsed)
                steady += [ask(client)[1] for _ in range(10)]
    finally:
        server.terminate()
        server.wait(10)
    print(f"  switched on the next request: {seen}/{switches}")
    print(
        f"  first request after a switch: median {statistics.median(firsts) * 1e3:.2f} ms "
        f"(max {max(firsts) * 1e3:.2f}); steady requests: median "
        f"{statistics.median(steady) * 1e3:.2f} ms"
    )


def in_process(store: Path, calls: int) -> None:
    from functions.runtime.cache import ArtifactCache
    from functions.runtime.pool import ModelPool
    from functions.runtime.registry import Registry
    from functions.runtime.served import ServedModel
    from functions.runtime.store import LocalStore

    local = LocalStore(store)
    pool = ModelPool(Registry(local), ArtifactCache(local, store.parent / "c"))
    costs = {}
    for ref in (f"{MODEL}:1", f"{MODEL}@production", MODEL):
        served = ServedModel(pool, ref, ttl=3600)
        served.current()
        best = min(timeit.repeat(served.current, number=calls, repeat=5))
        costs[ref] = best / calls * 1e6
    floor = costs[f"{MODEL}:1"]
    print(
        f"  current(): pinned {floor:.2f} us, @production {costs[f'{MODEL}@production']:.2f} us "
        f"(+{costs[f'{MODEL}@production'] - floor:.2f}), bare name {costs[MODEL]:.2f} us "
        f"(+{costs[MODEL] - floor:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--switches", type=count, default=10)
    parser.add_argument("--calls", type=count, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aiaas-switch-") as tmp:
        store = Path(tmp) / "store"
        for seed in (1, 2):
            path = mlp_onnx(Path(tmp) / f"mlp-{seed}.onnx", seed=seed)
            aiaas(store, "publish", str(path), "--name", MODEL, "--labels", LABELS)
        aiaas(store, "promote", MODEL, "1")
        over_http(store, args.switches)
        in_process(store, args.calls)


if __name__ == "__main__":
    main()
