"""An RNN with an initial-state input h0 [layers, batch, hidden] (PyTorch's layout: its rows on
axis 1, dynamic) beside x [batch, steps, features].

`aiaas batch` and `aiaas compare` refused it saying h0's batch was "fixed at 1 in the graph ...
export with a dynamic batch axis", and an `instances` request got a 422 suggesting
dynamic_axes={'h0': {0: 'batch'}}: both wrong (the export fixed nothing; axis 0 is its layers).
They now say its rows are on another axis than the first, which batch files and `instances`
records cannot give, and what works: whole tensors to the predict API, or h0 batch-first.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.predict.service import PredictService, service_from_env
from functions.runtime.batch.row_axis import UnsupportedModel
from functions.runtime.cache import ArtifactCache
from functions.runtime.comparison.run import CompareRequest, compare_versions
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.batch_support import run
from tests.functions.test_predict_events import body_of, http_event

FEATURES, HIDDEN = 4, 6
ROWS_ELSEWHERE = "its rows look to be on axis 1 (dynamic; axis 0 is fixed at 1)"
WHOLE = '{"inputs": {"x": ..., "h0": ...}}'


def with_state(path: Path) -> Path:
    """logits = mean of x over its steps @ W + h0[0] @ U; x [batch, steps, 4], h0 [1, batch, 6]."""
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["x", "steps"], ["pooled"], keepdims=0),
            helper.make_node("MatMul", ["pooled", "W"], ["from_x"]),
            helper.make_node("Squeeze", ["h0", "layers"], ["state"]),
            helper.make_node("MatMul", ["state", "U"], ["from_h"]),
            helper.make_node("Add", ["from_x", "from_h"], ["logits"]),
        ],
        "with_state",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time", FEATURES]),
            helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, "batch", HIDDEN]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        initializer=[
            numpy_helper.from_array(np.array([1], dtype=np.int64), "steps"),
            numpy_helper.from_array(rng.normal(size=(FEATURES, 2)).astype(np.float32), "W"),
            numpy_helper.from_array(np.array([0], dtype=np.int64), "layers"),
            numpy_helper.from_array(rng.normal(size=(HIDDEN, 2)).astype(np.float32), "U"),
        ],
    )
    return onnx_factory.save(graph, path, opset=18)  # ReduceMean/Squeeze take axes as inputs


@pytest.fixture
def published(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> LocalStore:
    """`with_state` published as h0:1 and h0:2 with the real CLI."""
    store = LocalStore(tmp_path / "store")
    model = with_state(tmp_path / "h0.onnx")
    for _ in range(2):
        argv = ["--store", store.uri, "publish", str(model), "--name", "h0", "--labels", "neg,pos"]
        assert main(argv) == 0, capsys.readouterr().err
    lines = "".join(
        json.dumps({"x": np.full((steps, FEATURES), 0.1).tolist(), "h0": [[0.5] * HIDDEN]}) + "\n"
        for steps in (5, 5, 3)
    )
    store.put_bytes("batch/h0/input/rows.jsonl", lines.encode())
    return store


def test_batch_and_compare_say_the_rows_are_on_another_axis(
    published: LocalStore, tmp_path: Path
) -> None:
    summary = run(published, tmp_path, "batch/h0/input/rows.jsonl")
    assert summary["status"] == "failed"
    for said in (ROWS_ELSEWHERE, WHOLE, "'h0' batch-first"):
        assert said in summary["error"]
    assert "fixed in the graph" not in summary["error"]
    pool = ModelPool(Registry(published), ArtifactCache(published, tmp_path / "cache"))
    with pytest.raises(UnsupportedModel, match="rows look to be on axis 1") as told:
        compare_versions(pool, CompareRequest("h0", "1", "2", "batch/h0/input/rows.jsonl"))
    assert "dynamic batch axis" not in str(told.value)


def service(store: LocalStore, tmp_path: Path) -> PredictService:
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    return service_from_env({"AIAAS_MODEL": "h0"}, pool)


def test_instances_are_told_to_send_whole_tensors_which_are_answered(
    published: LocalStore, tmp_path: Path
) -> None:
    served = service(published, tmp_path)
    x = np.random.default_rng(1).normal(size=(3, 5, FEATURES)).astype(np.float32)
    h0 = np.random.default_rng(2).normal(size=(1, 3, HIDDEN)).astype(np.float32)
    records = [{"x": x[i].tolist(), "h0": h0[:, i].tolist()} for i in range(3)]
    answer = served.handle(
        http_event("POST", "/models/h0/predict", json.dumps({"instances": records}))
    )
    assert answer["statusCode"] == 422
    error = body_of(answer)["error"]
    assert ROWS_ELSEWHERE in error and WHOLE in error
    assert "{0: 'batch'}" not in error

    whole = json.dumps({"inputs": {"x": x.tolist(), "h0": h0.tolist()}})
    answer = served.handle(http_event("POST", "/models/h0/predict", whole))
    assert answer["statusCode"] == 200, answer["body"]
    (own,) = ort.InferenceSession(str(tmp_path / "h0.onnx")).run(None, {"x": x, "h0": h0})
    np.testing.assert_allclose(body_of(answer)["outputs"]["logits"], own, atol=1e-5)
