"""Explain latency of the 64-feature digits MLP: aiaas against shap's KernelExplainer, same run.

    python -m bench.explain_latency [--rows 5] [--shap-rows 2] [--samples N]

One digits row at a time through the explain data plane (what `/models/{name}/explain` runs),
at the default budget (2 x varying features + 2048 coalitions) with the 10-centre k-means
background training stores; shap's KernelExplainer on the same background, the same number of
coalitions and no L1 selection, calling the same onnxruntime session. Also the floor: one bare
`session.run` over the same number of masked rows. Prints medians and ratios.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import orjson

from bench.models import publish_mlp
from functions.runtime.cache import ArtifactCache
from functions.runtime.dataplane.explain import ExplainPlane
from functions.runtime.dataplane.model import ModelPlane
from functions.runtime.explain.background import BACKGROUND_FILE, summarize
from functions.runtime.pool import ModelPool, ServedModel
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.store import LocalStore
from training.datasets import BUNDLED_DIR

MODEL = "bench-mlp"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5, help="digits rows explained by aiaas")
    parser.add_argument("--shap-rows", type=int, default=2, help="rows explained by shap")
    parser.add_argument("--samples", type=int, help="coalitions (default: aiaas's default)")
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
        rows = digits[1200 : 1200 + max(args.rows, args.shap_rows)]
        ours, used = time_aiaas(plane, rows[: args.rows], args.samples)
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        floor = time_floor(session, used * len(background.rows))
        theirs = time_shap(session, background, rows[: args.shap_rows], used)
    print(f"digits MLP 64->256->256->10, background {len(background.rows)} rows, {used} coalitions")
    print(f"  aiaas explain, 1 row     median {ours * 1e3:8.1f} ms  ({args.rows} rows)")
    print(f"  shap KernelExplainer     median {theirs * 1e3:8.1f} ms  ({args.shap_rows} rows)")
    print(
        f"  floor: one session.run   median {floor * 1e3:8.1f} ms  ({used * len(background.rows)} rows)"
    )
    print(f"  aiaas / floor {ours / floor:.2f}x    shap / aiaas {theirs / ours:.1f}x faster")


def time_aiaas(plane: ExplainPlane, rows: np.ndarray, samples: int | None) -> tuple[float, int]:
    parameters = {"samples": samples} if samples else {}
    body = orjson.dumps({"inputs": rows[:1].tolist(), "parameters": parameters})
    doc = plane.explain(MODEL, None, body)  # warm: model and background loaded
    times = []
    for row in rows:
        body = orjson.dumps({"inputs": [row.tolist()], "parameters": parameters})
        began = time.perf_counter()
        doc = plane.explain(MODEL, None, body)
        times.append(time.perf_counter() - began)
    return statistics.median(times), int(doc["parameters"]["samples"])


def time_floor(session: ort.InferenceSession, count: int, repeat: int = 7) -> float:
    feed = {"x": np.random.default_rng(0).random((count, 64), dtype=np.float32)}
    session.run(None, feed)
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def time_shap(session: ort.InferenceSession, background, rows: np.ndarray, samples: int) -> float:
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
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for row in rows:
            began = time.perf_counter()
            explainer.shap_values(row[None, :], nsamples=samples, l1_reg=False, silent=True)
            times.append(time.perf_counter() - began)
    return statistics.median(times)


if __name__ == "__main__":
    main()
