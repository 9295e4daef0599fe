"""Explain latency of the demo's text model: token attributions of one text, by its length.

    python -m bench.explain_text_latency [--rounds 5]

Trains training/specs/intents-transformer.yaml for one epoch (latency does not depend on the
weights: d_model 64, 2 layers, 32 tokens, as the demo serves it), then explains one text at a
time through the explain data plane (what `/models/{name}/explain` runs): a typical support
message (8 tokens: every one of its 254 coalitions, exact) and a 32-token one (the default
budget, 2,112 coalitions, sampled), with a predict of the long text for scale, each round in turn.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bench.args import count
from functions.runtime.cache import ArtifactCache
from functions.runtime.dataplane.explain import ExplainPlane
from functions.runtime.dataplane.model import ModelPlane
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.served import ServedModel
from functions.runtime.store import LocalStore
from training.job import run_job
from training.spec import load_spec

SPEC = Path("training/specs/intents-transformer.yaml")
SHORT = "my parcel never arrived where is it now"
LONG = " ".join(
    ["i was charged twice for the renewal and the app crashes when i open billing"] * 3
)  # 45 words: the model reads the first 32


@dataclasses.dataclass(frozen=True)
class Timers:
    explain: Callable[[str], tuple[float, dict[str, Any]]]  # seconds, and the answer
    predict: Callable[[str, str], float]  # (the text input's name, the text) -> seconds


def explain_timers(registry: Registry, cache: Path, name: str) -> Timers:
    """Timers of one text explained and one predicted through the explain data plane over
    `registry` (what `/models/{name}/explain` runs)."""
    plane = ExplainPlane(
        ModelPlane(ServedModel(ModelPool(registry, ArtifactCache(registry.store, cache)), name)),
        max_seconds=60,
    )

    def explain(text: str) -> tuple[float, dict[str, Any]]:
        body = orjson.dumps({"inputs": [text]})
        began = time.perf_counter()
        doc = plane.explain(name, None, body)
        return time.perf_counter() - began, doc

    def predict(field: str, text: str) -> float:
        model = plane.models.model(name, None)
        began = time.perf_counter()
        model.predict({field: np.array([text], dtype=object)})
        return time.perf_counter() - began

    return Timers(explain, predict)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=count, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        registry = Registry(LocalStore(root / "store"))
        spec = dataclasses.replace(load_spec(SPEC), epochs=1)
        run_job(spec, registry, root / "run", publish_model=True, progress=False)
        timers = explain_timers(registry, root / "cache", spec.name)

        def explain(text: str) -> float:
            return timers.explain(text)[0]

        def predict() -> float:
            return timers.predict("tokens", LONG)

        explain(SHORT), explain(LONG), predict()  # warm: model loaded, sessions built
        times = np.array([[explain(SHORT), explain(LONG), predict()] for _ in range(args.rounds)])
    short, long, one = np.median(times, axis=0) * 1e3
    print(f"{spec.name} (d_model 64, 2 layers, 32 tokens), {args.rounds} rounds")
    print(f"  explain  8 tokens, 254 coalitions (exact)     median {short:7.1f} ms")
    print(f"  explain 32 tokens, 2,112 coalitions (sampled) median {long:7.1f} ms")
    print(f"  predict the 32-token text                     median {one:7.1f} ms")


if __name__ == "__main__":
    main()
