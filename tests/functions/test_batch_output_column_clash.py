"""Two outputs whose CSV prediction columns share a name (hunt_batch2 1): tf2onnx names Keras
heads after their layers, `dense` (2 units) and `dense_1` (1 unit), and the output of a CSV
wrote `pred_dense_0,pred_dense_1,pred_dense_1`. pandas then read the second as
`pred_dense_1.1`, csv.DictReader kept the last: value 1 of `dense` read as `dense_1`'s answer.
Scored from the SQS message S3 sends, on a directory store and on S3 (moto's server), the CSV
fails saying which outputs clash and what to score from; JSONL and NPY keep them apart.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper

from functions.runtime.registry import Registry
from functions.runtime.store import ObjectStore
from tests import onnx_factory
from tests.batch_support import scored

IN, OUT = "batch/heads/input", "batch/heads/output"


def two_heads(path: Path) -> Path:
    """dense = x ([N, 2]) and dense_1 = the sum of x's values ([N, 1]), named as tf2onnx names
    two Keras heads."""
    graph = helper.make_graph(
        [
            helper.make_node("Identity", ["x"], ["dense"]),
            helper.make_node("ReduceSum", ["x", "axis"], ["dense_1"], keepdims=1),
        ],
        "two_heads",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [
            helper.make_tensor_value_info("dense", TensorProto.FLOAT, ["N", 2]),
            helper.make_tensor_value_info("dense_1", TensorProto.FLOAT, ["N", 1]),
        ],
        initializer=[helper.make_tensor("axis", TensorProto.INT64, [1], [1])],
    )
    return onnx_factory.save(graph, path)


@pytest.fixture
def heads(store: ObjectStore, tmp_path: Path) -> ObjectStore:
    path = two_heads(tmp_path / "heads.onnx")
    Registry(store).publish(onnx_factory.manifest_for(path, "heads", "1"), path)
    return store


def score(store: ObjectStore, tmp_path: Path, name: str, data: bytes) -> dict[str, Any]:
    return scored(store, tmp_path, "heads", name, data)


def test_a_csv_whose_prediction_columns_would_share_a_name_fails_saying_which(
    heads: ObjectStore, tmp_path: Path
) -> None:
    summary = score(heads, tmp_path, "rows.csv", b"id,x_0,x_1\na,1,2\nb,3,4\n")
    assert (summary["status"], summary["rows"]) == ("failed", 0)
    assert summary["error"] == (
        f"{IN}/rows.csv: model heads:1 would write value 1 of 'dense' and output 'dense_1' both "
        "as the column 'pred_dense_1', which one CSV header cannot tell apart: score it from "
        "JSONL (a field an output), or NPY for a single-input model (an array an output)"
    )
    assert not heads.exists(f"{OUT}/rows.csv")  # no output whose columns read as another's


def test_jsonl_and_npy_keep_the_two_outputs_apart(heads: ObjectStore, tmp_path: Path) -> None:
    summary = score(heads, tmp_path, "rows.jsonl", b'{"id": "a", "x": [1, 2]}\n')
    assert (summary["status"], summary["scored_rows"]) == ("succeeded", 1)
    line = json.loads(heads.get_bytes(f"{OUT}/rows.jsonl"))
    assert (line["pred_dense"], line["pred_dense_1"]) == ([1.0, 2.0], [3.0])
    buffer = io.BytesIO()
    np.save(buffer, np.array([[1, 2], [3, 4]], dtype=np.float32))
    summary = score(heads, tmp_path, "rows.npy", buffer.getvalue())
    assert (summary["status"], summary["scored_rows"]) == ("succeeded", 2)
    arrays = np.load(io.BytesIO(heads.get_bytes(f"{OUT}/rows.npz")))
    assert arrays["dense_1"].tolist() == [[3.0], [7.0]]
    assert arrays["dense"].tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_outputs_whose_columns_differ_still_score_from_csv(
    store: ObjectStore, tmp_path: Path
) -> None:
    """`a` and `b` of [N, 3]: pred_a_0..2, pred_b_0..2, as before."""
    path = onnx_factory.two_outputs(tmp_path / "two.onnx")
    Registry(store).publish(onnx_factory.manifest_for(path, "heads", "1"), path)
    summary = score(store, tmp_path, "two.csv", b"x_0,x_1,x_2\n1,2,3\n")
    assert (summary["status"], summary["scored_rows"]) == ("succeeded", 1)
    header = store.get_bytes(f"{OUT}/two.csv").split(b"\n")[0]
    assert header == b"x_0,x_1,x_2,pred_a_0,pred_a_1,pred_a_2,pred_b_0,pred_b_1,pred_b_2"
