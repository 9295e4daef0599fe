"""An .npy scored by a model whose rows change shape between chunks (a detector's [N, K, 6],
K the most boxes found in a call): the .npz holds one array an output, rows of one shape, so
the run fails saying so and pointing to JSONL. It failed in numpy ("value array of shape
(2,0,6) could not be broadcast") and the SQS message went back to the queue."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import nonrow_models, onnx_factory
from tests.batch_support import read_jsonl, run


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _store(tmp_path: Path) -> tuple[LocalStore, Path]:
    store = LocalStore(tmp_path / "store")
    model = nonrow_models.detections(tmp_path / "det.onnx")
    Registry(store).publish(onnx_factory.manifest_for(model, "det", "1"), model)
    return store, model


def _mixed() -> np.ndarray:
    """4 images: the first two with positive cells, the last two with none (K = 0 there)."""
    x = nonrow_models.images(4)
    x[:2, :, 0] = np.abs(x[:2, :, 0]) + 0.1
    x[2:, :, 0] = -np.abs(x[2:, :, 0]) - 0.1
    return x


def test_an_npy_whose_output_rows_change_shape_fails_naming_the_output_and_jsonl(
    tmp_path: Path,
) -> None:
    store, _ = _store(tmp_path)
    store.put_bytes("batch/det/input/imgs.npy", _npy(_mixed()))
    summary = run(store, tmp_path, "batch/det/input/imgs.npy", chunk_rows=2)
    assert summary["status"] == "failed"
    error = summary["error"]
    assert "output 'dets' answers rows of shape [0, 6] from row 2" in error
    assert "earlier rows were [8, 6]" in error and "JSONL" in error
    assert "broadcast" not in error


def test_the_same_rows_as_jsonl_are_written_whole_and_one_chunk_of_npy_is_kept(
    tmp_path: Path,
) -> None:
    store, model = _store(tmp_path)
    x = _mixed()
    lines = "".join(json.dumps(row.tolist()) + "\n" for row in x)
    store.put_bytes("batch/det/input/imgs.jsonl", lines.encode())
    summary = run(store, tmp_path, "batch/det/input/imgs.jsonl", chunk_rows=2)
    assert summary["status"] == "succeeded", summary
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    written = read_jsonl(store, "batch/det/output/imgs.jsonl")
    for first in (0, 2):
        want = session.run(None, {"x": x[first : first + 2]})[0]
        for i in range(2):
            got = np.asarray(written[first + i]["pred_dets"], dtype=np.float32)
            np.testing.assert_array_equal(got.reshape(want[i].shape), want[i])
    # One chunk: every row of one shape, written as it was.
    store.put_bytes("batch/det/input/one.npy", _npy(x))
    assert run(store, tmp_path, "batch/det/input/one.npy")["status"] == "succeeded"


def test_a_model_answering_the_request_as_a_whole_is_told_to_use_the_predict_api(
    tmp_path: Path,
) -> None:
    """A sum over the rows ([1, F]) was refused with a time-major RNN's advice alone
    (batch_first=True), which cannot apply to it (outputs hunt)."""
    store = LocalStore(tmp_path / "store")
    model = nonrow_models.summed(tmp_path / "sum.onnx")
    Registry(store).publish(onnx_factory.manifest_for(model, "sum", "1"), model)
    store.put_bytes("batch/sum/input/rows.npy", _npy(np.ones((5, 4), dtype=np.float32)))
    summary = run(store, tmp_path, "batch/sum/input/rows.npy")
    assert summary["status"] == "failed"
    assert summary["error"].startswith("output 's' answers [1, 4] for 5 row(s) sent")
    assert (
        "or it answers the request as a whole (detections of any count, a sum" in (summary["error"])
    )
