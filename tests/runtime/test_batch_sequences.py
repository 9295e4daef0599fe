"""Sequence models in batch scoring and `aiaas compare` (found by a hunt with users' own RNNs).

- A time-major RNN (PyTorch's default `nn.GRU` layout: x [steps, batch, features] -> [batch,
  classes]) was "succeeded: scored 6 of 6 rows" for one sequence of 6 steps, its one answer
  copied into all 6 rows (with --chunk-rows 2, three answers, one per 2-step chunk); a file of
  two sequences failed with numpy's "could not be broadcast" and went back to the queue.
- `aiaas compare` of a JSONL file of sequences of several lengths, which batch scores, failed:
  its latency timing sliced the ragged rows and sent the slice to the model.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.runtime.cache import ArtifactCache
from functions.runtime.comparison.run import CompareRequest, compare_versions
from functions.runtime.errors import InvalidInput
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.batch_support import run

FEATURES = 4
LABELS = ("a", "b", "c")


def mean_over_steps(path: Path, dims: list[str | int], axis: int, seed: int = 0) -> Path:
    """logits = mean of x over its steps axis `axis`, @ W: a sequence classifier."""
    w = np.random.default_rng(seed).normal(size=(FEATURES, 3)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["x", "axes"], ["pooled"], keepdims=0),
            helper.make_node("MatMul", ["pooled", "W"], ["logits"]),
        ],
        "sequence_mean",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        initializer=[
            numpy_helper.from_array(np.array([axis], dtype=np.int64), "axes"),
            numpy_helper.from_array(w, "W"),
        ],
    )
    return onnx_factory.save(graph, path, opset=18)  # ReduceMean/Squeeze take axes as inputs


def publish(store: LocalStore, tmp_path: Path, name: str, versions: list[Path]) -> None:
    registry = Registry(store)
    for number, path in enumerate(versions, start=1):
        registry.publish(onnx_factory.manifest_for(path, name, str(number), labels=LABELS), path)


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize(("shape", "chunk_rows"), [((6, 1, FEATURES), 2), ((7, 2, FEATURES), None)])
def test_a_time_major_model_is_refused_naming_its_axes_not_spread_over_rows(
    tmp_path: Path, shape: tuple[int, ...], chunk_rows: int | None
) -> None:
    store = LocalStore(tmp_path / "store")
    model = mean_over_steps(tmp_path / "tm.onnx", ["time", "batch", FEATURES], axis=0)
    publish(store, tmp_path, "tm", [model])
    store.put_bytes("batch/tm/input/seq.npy", npy(np.ones(shape, dtype=np.float32)))
    summary = run(store, tmp_path, "batch/tm/input/seq.npy", chunk_rows=chunk_rows)
    assert summary["status"] == "failed"
    assert "output 'logits' answers [" in summary["error"]
    assert "reads each input's first axis as its rows" in summary["error"]
    assert "batch_first=True" in summary["error"]
    assert not store.exists("batch/tm/output/seq.npz")


def test_compare_times_a_file_of_sequences_of_several_lengths(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    dims: list[str | int] = ["batch", "steps", FEATURES]
    first = mean_over_steps(tmp_path / "a.onnx", dims, axis=1, seed=1)
    second = mean_over_steps(tmp_path / "b.onnx", dims, axis=1, seed=2)
    publish(store, tmp_path, "seq", [first, second])
    rng = np.random.default_rng(3)
    rows = [rng.normal(size=(steps, FEATURES)).astype(np.float32) for steps in (3, 6, 6, 1, 4)]
    lines = "".join(json.dumps({"x": row.tolist()}) + "\n" for row in rows)
    store.put_bytes("batch/seq/input/rows.jsonl", lines.encode())
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    report = compare_versions(pool, CompareRequest("seq", "1", "2", "batch/seq/input/rows.jsonl"))
    assert report["rows"]["compared"] == 5
    sessions = [ort.InferenceSession(str(path)) for path in (first, second)]
    labels = [[int(np.argmax(s.run(None, {"x": row[None]})[0])) for row in rows] for s in sessions]
    agreed = sum(a == b for a, b in zip(*labels, strict=True))
    assert report["agreement"]["rate"] == pytest.approx(agreed / 5)


def test_compare_refuses_a_time_major_model_rather_than_counting_its_batch_as_rows(
    tmp_path: Path,
) -> None:
    """`aiaas compare tm 1 2` of a 7-row file said "2 rows compared"."""
    store = LocalStore(tmp_path / "store")
    dims: list[str | int] = ["time", "batch", FEATURES]
    models = [mean_over_steps(tmp_path / f"{n}.onnx", dims, axis=0, seed=n) for n in (1, 2)]
    publish(store, tmp_path, "tm", models)
    store.put_bytes("batch/tm/input/seq.npy", npy(np.ones((7, 2, FEATURES), dtype=np.float32)))
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    with pytest.raises(InvalidInput, match="reads each input's first axis as its rows"):
        compare_versions(pool, CompareRequest("tm", "1", "2", "batch/tm/input/seq.npy"))
