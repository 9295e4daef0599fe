"""A classifier output named as a field batch adds (`label`, `score`) is written as
`<name>_output` (outputs hunt): a regression head named `score` beside class logits was written
as the classifier's score, twice in a CSV header and a JSONL line, and lost from the .npz; so
was a class-scores output named `score` itself.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.runtime.cache import ArtifactCache
from functions.runtime.comparison.run import CompareRequest, compare_versions
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.batch_support import run

LABELS = ("a", "b", "c")
X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)


def two_heads(path: Path, scores: str, seed: int = 0) -> Path:
    """Class logits (named `scores`) [N, 3], the same for every seed, and a regression head
    `score` [N, 1] that differs by seed."""
    w = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    v = np.random.default_rng(seed).normal(size=(4, 1)).astype(np.float32)
    w, v = numpy_helper.from_array(w, "W"), numpy_helper.from_array(v, "V")
    head = "score" if scores != "score" else "value"
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], [scores]),
            helper.make_node("MatMul", ["x", "V"], [head]),
        ],
        "two_heads",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [
            helper.make_tensor_value_info(scores, TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info(head, TensorProto.FLOAT, ["N", 1]),
        ],
        initializer=[w, v],
    )
    return onnx_factory.save(graph, path)


def published(tmp_path: Path, scores: str) -> tuple[LocalStore, list[Path]]:
    store = LocalStore(tmp_path / "store")
    registry = Registry(store)
    paths = [two_heads(tmp_path / f"m{seed}.onnx", scores, seed) for seed in (1, 2)]
    for version, path in enumerate(paths, start=1):
        manifest = onnx_factory.manifest_for(path, "m", str(version), labels=LABELS)
        registry.publish(manifest, path)
    return store, paths


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize("scores", ["logits", "score"])
def test_an_output_named_score_keeps_its_values_in_every_format(
    tmp_path: Path, scores: str
) -> None:
    store, paths = published(tmp_path, scores)
    session = ort.InferenceSession(str(paths[-1]))  # batch scores the newest version
    model_score, logits = (session.run([name], {"x": X})[0] for name in ("score", scores))
    header = ",".join(f"x_{i}" for i in range(4))
    rows = "".join(",".join(str(float(v)) for v in row) + "\n" for row in X)
    store.put_bytes("batch/m/input/rows.csv", f"{header}\n{rows}".encode())
    store.put_bytes("batch/m/input/rows.npy", npy(X))
    for name in ("rows.csv", "rows.npy"):
        assert run(store, tmp_path, f"batch/m/input/{name}")["status"] == "succeeded"
    text = store.get_bytes("batch/m/output/rows.csv").decode()
    head = next(csv.reader(io.StringIO(text)))
    assert len(head) == len(set(head)), head
    table = list(csv.DictReader(io.StringIO(text)))
    width = model_score.shape[1]
    got = [
        [float(r[f"pred_score_output{f'_{j}' if width > 1 else ''}"]) for j in range(width)]
        for r in table
    ]
    np.testing.assert_allclose(got, model_score, rtol=1e-6)
    best = np.exp(logits - logits.max(1, keepdims=True))
    best = (best / best.sum(1, keepdims=True)).max(1)
    np.testing.assert_allclose([float(r["pred_score"]) for r in table], best, rtol=1e-6)
    saved = np.load(io.BytesIO(store.get_bytes("batch/m/output/rows.npz")))
    np.testing.assert_allclose(saved["score_output"].reshape(5, -1), model_score, rtol=1e-6)
    np.testing.assert_allclose(saved["score"], best, rtol=1e-6)


def test_compare_compares_the_model_s_own_score_output(tmp_path: Path) -> None:
    store, paths = published(tmp_path, "logits")
    store.put_bytes("batch/m/input/rows.npy", npy(X))
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    report = compare_versions(pool, CompareRequest("m", "1", "2", "batch/m/input/rows.npy"))
    heads = [ort.InferenceSession(str(p)).run(["score"], {"x": X})[0] for p in paths]
    assert report["agreement"]["rate"] == 1.0  # the same class logits
    # The heads differ: compared as the classifier's score (the same), this was 0.
    assert report["max_abs_diff"] == pytest.approx(float(np.abs(heads[1] - heads[0]).max()))
    assert json.dumps(report)
