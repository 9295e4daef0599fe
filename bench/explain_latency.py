"""Explain latency of the 64-feature digits MLP: aiaas against shap's KernelExplainer, same run.

    python -m bench.explain_latency [--rounds 5] [--samples N]

One digits row at a time through the explain data plane (what `/models/{name}/explain` runs),
at the default budget (2 x varying features + 2048 coalitions) with the 10-centre k-means
background training stores; shap's KernelExplainer on the same row, background, number of
coalitions and no L1 selection, calling the same onnxruntime session. Also the floor: one bare
`session.run` over the same number of masked rows. The three are timed in turn within each
round (a new row each), so a shared machine's load weighs on all of them alike; prints medians,
and the range of the per-round ratios.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import orjson

from bench.args import count
from bench.models import publish_mlp
from functions.runtime.cache import ArtifactCache
from functions.runtime.dataplane.explain import ExplainPlane
from functions.runtime.dataplane.model import ModelPlane
from functions.runtime.explain.background import BACKGROUND_FILE, summarize
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.served import ServedModel
from functions.runtime.store import LocalStore
from training.datasets import BUNDLED_DIR

MODEL = "bench-mlp"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=count, default=5, help="rows, each explained by both")
    parser.add_argument("--samples", type=count, help="coalitions (default: aiaas's default)")
    args = parser.parse_args()
    digits = np.load(BUNDLED_DIR / "digits.npz")["x"].reshape(-1, 64).astype(np.float64)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = LocalStore(root / "store")
        onnx_path = publish_mlp(root / "store", MODEL)
        background = summarize(digits[:1200])
        key = f"{version_prefix(MODEL, '1')}/{BACKGROUND_FILE}"
        store.put_bytes(key, background.to_json().encode())
        pool = ModelPool(Registry(store), ArtifactCache(store, root / "cache"))
        plane = ExplainPlane(ModelPlane(ServedModel(pool, MODEL)), max_seconds=60)
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        rows = digits[1200 : 1200 + args.rounds]
        used = aiaas_once(plane, rows[0], args.samples)[1]  # warm: model and background loaded
        shap_once = shap_explainer(session, background, used)
        shap_once(rows[0])
        feed = {
            "x": np.random.default_rng(0).random(
                (used * len(background.rows), 64), dtype=np.float32
            )
        }
        session.run(None, feed)
        times = np.array(
            [round_times(plane, session, shap_once, feed, row, args.samples) for row in rows]
        )
    ours, floor, theirs = np.median(times, axis=0)
    speedup, over_floor = times[:, 2] / times[:, 0], times[:, 0] / times[:, 1]
    print(f"digits MLP 64->256->256->10, background {len(background.rows)} rows, {used} coalitions")
    print(f"  aiaas explain, 1 row     median {ours * 1e3:8.1f} ms  ({args.rounds} rounds)")
    print(f"  shap KernelExplainer     median {theirs * 1e3:8.1f} ms")
    print(f"  floor: one session.run   median {floor * 1e3:8.1f} ms  ({len(feed['x'])} rows)")
    print(
        f"  per round: aiaas / floor {over_floor.min():.2f}-{over_floor.max():.2f}x    "
        f"shap / aiaas {speedup.min():.1f}-{speedup.max():.1f}x (median {np.median(speedup):.1f}x)"
    )


def round_times(plane: ExplainPlane, session, shap_once, feed, row, samples) -> list[float]:
    """Seconds for (aiaas, the floor, shap) on one row, timed back to back."""
    ours = aiaas_once(plane, row, samples)[0]
    began = time.perf_counter()
    session.run(None, feed)
    floor = time.perf_counter() - began
    return [ours, floor, shap_once(row)]


def aiaas_once(plane: ExplainPlane, row: np.ndarray, samples: int | None) -> tuple[float, int]:
    parameters = {"samples": samples} if samples else {}
    body = orjson.dumps({"inputs": [row.tolist()], "parameters": parameters})
    began = time.perf_counter()
    doc = plane.explain(MODEL, None, body)
    return time.perf_counter() - began, int(doc["parameters"]["samples"])


def shap_explainer(session: ort.InferenceSession, background, samples: int):
    """Seconds for shap's KernelExplainer to explain one row, as a function of the row."""
    import shap
    from shap.utils._legacy import DenseData

    def model(x: np.ndarray) -> np.ndarray:
        logits = session.run(None, {"x": x.astype(np.float32)})[0].astype(np.float64)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return np.asarray(e / e.sum(axis=1, keepdims=True))

    names = [f"x_{i}" for i in range(64)]
    explainer = shap.KernelExplainer(
        model, DenseData(background.rows, names, None, background.weights)
    )

    def once(row: np.ndarray) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            began = time.perf_counter()
            explainer.shap_values(row[None, :], nsamples=samples, l1_reg=False, silent=True)
            return time.perf_counter() - began

    return once


if __name__ == "__main__":
    main()
