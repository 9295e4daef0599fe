"""A record keyed by the columns an explanation names a two-input model's values by (x1_0,
..., x2_1: as CSV files and `aiaas baseline` read them) is refused saying a record holds each
input whole, by predict and explain alike. It was "instances[0] has unknown input 'x2_1' (a
misspelling of 'x1', which it lacks?)", naming one key of five."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.functions.test_predict_events import body_of, http_event

RECORD = {"x1_0": 1, "x1_1": 2, "x1_2": 3, "x2_0": 0, "x2_1": -1}
SAYS = (
    "instances[0] names the values of the model's inputs one by one (x1_0, x1_1, x1_2, ...), "
    'as CSV files and explanations do; a record holds each input whole: {"x1": [3 values], '
    '"x2": [2 values]}'
)


def two_inputs(path: Path) -> Path:
    """y = sum(x1) + sum(x2): inputs x1 [N, 3] and x2 [N, 2]."""
    nodes = [
        helper.make_node("Concat", ["x1", "x2"], ["x"], axis=1),
        helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=1),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x1", TensorProto.FLOAT, [None, 3]),
            helper.make_tensor_value_info("x2", TensorProto.FLOAT, [None, 2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor("axes", TensorProto.INT64, [1], [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("route", ["predict", "explain"])
def test_a_record_of_value_columns_is_told_to_send_each_input_whole(
    tmp_path: Path, route: str
) -> None:
    store = LocalStore(tmp_path / "store")
    path = two_inputs(tmp_path / "two.onnx")
    assert main(["--store", store.uri, "publish", str(path), "--name", "twoin"]) == 0
    csv = tmp_path / "train.csv"
    csv.write_text("x1_0,x1_1,x1_2,x2_0,x2_1\n" + "".join(f"{i},1,2,3,{-i}\n" for i in range(9)))
    assert main(["--store", store.uri, "baseline", "twoin", str(csv)]) == 0
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "twoin"}, pool)
    answer = service.handle(
        http_event("POST", f"/models/twoin/{route}", json.dumps({"instances": [RECORD]}))
    )
    assert (answer["statusCode"], body_of(answer)) == (422, {"error": SAYS})
    whole = {"x1": [1, 2, 3], "x2": [0, -1]}
    answer = service.handle(
        http_event("POST", f"/models/twoin/{route}", json.dumps({"instances": [whole]}))
    )
    assert answer["statusCode"] == 200, body_of(answer)
