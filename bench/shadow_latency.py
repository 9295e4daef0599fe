"""The caller's latency with shadow traffic on vs off, in one process (same run), p50/p99.

    python -m bench.shadow_latency [--requests 3000] [--blocks 6] [--runs 3] [--sample 1.0]
                                   [--rate 0]

The reference MLP (64->256->256->10) as version 1 and a second one (other weights) as version
2, published to a local store; `@off` points at 1, `@production` at 1 with 2 as its shadow.
Two predict services (the real handler, HTTP API v2 events) share one model pool; blocks of
requests alternate between them so drift in the machine hits both alike. The shadow's copies
leave the caller's process for its replay process (functions/shadow/, SCHED_IDLE), which
reports back what it replayed; `--sink log` writes them to stdout (/dev/null here) as Lambda
does, to measure the caller's cost of the line alone. The goal: shadow-on
p99 within 5% of shadow-off p99; each run also says how many sampled copies the shadow
replayed and how many it dropped (a shadow that drops everything meets the goal trivially).

Two loads:
- `--rate 0` (default): back to back, the worst case for the shadow worker. The caller never
  waits for a socket, so it never leaves the GIL or its core idle: every copy the shadow
  replays during a block is time taken from callers, and a shadow that yields to them replays
  little more than what is queued when the block ends.
- `--rate R`: one request every 1/R s, the caller sleeping in between (as a service waits for
  its next request on a socket), the load a production service runs at, with CPU headroom.
  Latency is the handler's time, as in the other load.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.args import count, rate_or_zero, share, wait
from bench.models import mlp_onnx, publish_classifier
from functions.predict.service import PredictService
from functions.predict.shadow import SINKS, CopySink, LogSink
from functions.predict.shadow_tally import ShadowTally
from functions.predict.telemetry import RequestMetrics
from functions.runtime.cache import ArtifactCache
from functions.runtime.introspect import read_signature
from functions.runtime.manifest import ModelManifest, Postprocessing
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.served import ServedModel
from functions.runtime.store import LocalStore
from functions.shadow.channel import ReplayChannel
from tests.functions.test_predict_events import http_event


def publish_pair(root: Path, sample: float) -> Registry:
    """Versions 1 and 2 of `m` in root/store; `@off` at 1, `@production` at 1 shadowed by 2."""
    store = root / "store"
    publish_classifier(store, "m", mlp_onnx(root / "v1.onnx"))
    registry = Registry(LocalStore(store))
    path = mlp_onnx(root / "v2.onnx", seed=1)
    sig = read_signature(path)
    labels = tuple(str(i) for i in range(sig.outputs[0].shape[-1]))
    post = Postprocessing(scores_output=sig.outputs[0].name)
    manifest = ModelManifest(
        name="m", version="2", task="classification", inputs=sig.inputs,
        outputs=sig.outputs, file=sig.file, labels=labels, postprocessing=post,
    )  # fmt: skip
    registry.publish(manifest, path)
    registry.set_alias("m", "off", "1")
    registry.set_shadow("m", "production", "2", sample)
    return registry


def setup(root: Path, sample: float, sink: str) -> tuple[PredictService, PredictService]:
    store = root / "store"
    registry = publish_pair(root, sample)
    pool = ModelPool(registry, ArtifactCache(registry.store, root / "cache"))
    devnull = open("/dev/null", "w")  # noqa: SIM115 - lives as long as the bench
    env = {"AIAAS_STORE": str(store), "AIAAS_CACHE_DIR": str(root / "replay-cache")}
    env["AIAAS_DISABLE_METRICS"] = "true"
    services = []
    for ref in ("m@off", "m@production"):
        metrics = RequestMetrics(out=devnull)
        copies: CopySink = LogSink(devnull)
        if sink == "process":
            copies = ReplayChannel(env, metrics.shadow_observed, metrics.shadow_dropped)
        served = ServedModel(pool, ref, ttl=3600)
        services.append(PredictService(served, metrics=metrics, shadow_sink=copies))
    return services[0], services[1]


class Copies:
    """Counts the copies the shadow replayed and dropped (a metrics observer)."""

    def __init__(self) -> None:
        self.replayed = self.dropped = 0

    def request(self, *args: object) -> None: ...

    def model_load(self, *args: object) -> None: ...

    def version_load(self, *args: object) -> None: ...

    def model_eviction(self, *args: object) -> None: ...

    def capture(self, *args: object) -> None: ...

    def shadow(self, labels: object, tally: ShadowTally) -> None:
        self.replayed += tally.copies

    def shadow_dropped(self, *args: object) -> None:
        self.dropped += 1


def block(service: PredictService, events: list[dict[str, object]], rate: float) -> list[float]:
    times = []
    due = time.perf_counter()
    for event in events:
        if rate:
            due += 1 / rate
            time.sleep(max(0.0, due - time.perf_counter()))
        start = time.perf_counter()
        response = service.handle(event)
        times.append(time.perf_counter() - start)
        assert response["statusCode"] == 200, response["body"]
    return times


def one_run(
    off: PredictService, on: PredictService, copies: Copies, args: argparse.Namespace
) -> dict[str, float]:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(args.requests, 64)).astype(np.float32)
    events = [
        http_event("POST", "/models/m/predict", json.dumps({"inputs": [row.tolist()]}))
        for row in rows
    ]
    block(off, events[:300], args.rate), block(on, events[:300], args.rate)  # warm both
    on.shadow.drain(args.drain)
    copies.replayed = copies.dropped = 0
    samples: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(args.blocks):
        samples["off"] += block(off, events, args.rate)
        samples["on"] += block(on, events, args.rate)
        # The next block starts with the replay caught up, as after a gap, or after at most
        # --drain s: on a machine shared with other work the SCHED_IDLE replay may get no CPU.
        on.shadow.drain(args.drain)
    figures: dict[str, float] = {"replayed": copies.replayed, "dropped": copies.dropped}
    for case, times in samples.items():
        ms = np.array(times) * 1e3
        figures[f"{case}_p50"], figures[f"{case}_p99"] = np.percentile(ms, [50, 99])
    figures["p99_ratio"] = figures["on_p99"] / figures["off_p99"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=count, default=3000)
    parser.add_argument("--blocks", type=count, default=6)
    parser.add_argument("--runs", type=count, default=3)
    parser.add_argument("--sample", type=share, default=1.0)
    parser.add_argument(
        "--rate", type=rate_or_zero, default=0.0, help="requests/s; 0: back to back"
    )
    parser.add_argument("--sink", choices=SINKS, default="process")
    parser.add_argument("--drain", type=wait, default=5.0, help="s to wait for the replay")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        off, on = setup(Path(root), args.sample, args.sink)
        copies = Copies()
        on.metrics.observe(copies)
        for run in range(args.runs):
            f = one_run(off, on, copies, args)
            settled = f["replayed"] / max(1, f["replayed"] + f["dropped"])
            print(
                f"run {run + 1}: off p50 {f['off_p50']:.3f} ms p99 {f['off_p99']:.3f} ms | "
                f"on p50 {f['on_p50']:.3f} ms p99 {f['on_p99']:.3f} ms | "
                f"p99 on/off {f['p99_ratio']:.3f} | copies replayed {f['replayed']:.0f}, "
                f"dropped {f['dropped']:.0f} ({settled:.1%} of sampled replayed)"
            )


if __name__ == "__main__":
    main()
