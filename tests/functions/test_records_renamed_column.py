"""A record naming a column the model no longer reads, where it reads another instead.

A weekly retrain on a file whose `city` column became `town` serves one input per column:
`age`, `income`, `town`. A week-1 client's record `{"age": 30, "income": 50000, "city": "Nice"}`
got "instances[0] has unknown input 'city'": not which input the model wants instead, where OIP
said "missing input 'town' (town: string [-1, 1]); got 'city'" (hunt_journey8 5). A real ONNX
graph (one input per column, a string one among them) published by the CLI, the predict
function's own answer to an API Gateway v2.0 event."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.functions.test_predict_events import http_event


def _graph(path: Path) -> Path:
    """age, income float32 [N, 1] and town string [N, 1] -> logits [N, 2] (town one-hot)."""
    encode = helper.make_node(
        "OneHotEncoder", ["town"], ["hot"], domain="ai.onnx.ml", cats_strings=["Lyon", "Nice"]
    )
    nodes = [
        encode,
        helper.make_node("Reshape", ["hot", "shape"], ["flat"]),
        helper.make_node("Cast", ["flat"], ["town_f"], to=TensorProto.FLOAT),
        helper.make_node("Concat", ["age", "income", "town_f"], ["row"], axis=1),
        helper.make_node("MatMul", ["row", "W"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "churn",
        [
            helper.make_tensor_value_info("age", TensorProto.FLOAT, ["N", 1]),
            helper.make_tensor_value_info("income", TensorProto.FLOAT, ["N", 1]),
            helper.make_tensor_value_info("town", TensorProto.STRING, ["N", 1]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])],
        initializer=[
            numpy_helper.from_array(np.ones((4, 2), np.float32), "W"),
            numpy_helper.from_array(np.array([-1, 2], np.int64), "shape"),
        ],
    )
    return onnx_factory.save(graph, path, ml=3)


def test_a_renamed_column_is_said_with_the_input_the_model_reads_instead(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    argv = ["--store", str(store), "publish", str(_graph(tmp_path / "m.onnx")), "--name", "m"]
    assert main([*argv, "--labels", "churn,stay"]) == 0
    capsys.readouterr()
    pool = ModelPool(Registry(LocalStore(store)), ArtifactCache(LocalStore(store), store / "c"))
    service = service_from_env({"AIAAS_MODEL": "m"}, pool)

    def post(record: dict[str, object]) -> tuple[int, dict[str, object]]:
        body = json.dumps({"instances": [record]})
        answer = service.handle(http_event("POST", "/models/m/predict", body))
        return int(answer["statusCode"]), json.loads(answer["body"])

    status, body = post({"age": 30, "income": 5, "town": "Nice"})
    assert status == 200, body
    status, body = post({"age": 30, "income": 5, "city": "Nice"})
    assert (status, body["error"]) == (
        422,
        "instances[0] lacks input 'town' (town: string [-1, 1]) and has fields the model does "
        "not read: 'city'; the model reads age, income, town",
    ), body
    # A caller's id beside it is no suspect: the input lacked leads (rev14 7).
    status, body = post({"age": 30, "income": 5, "city": "Nice", "id": 7})
    assert (status, body["error"]) == (
        422,
        "instances[0] lacks input 'town' (town: string [-1, 1]) and has fields the model does "
        "not read: 'city', 'id'; the model reads age, income, town",
    ), body
    status, body = post({"age": 30, "income": 5, "twn": "Nice"})  # a misspelling, as before
    assert body["error"] == (
        "instances[0] has unknown input 'twn' (a misspelling of 'town', which it lacks?)"
    ), body
