"""A classifier published without --labels is explained as predict answers it: class
probabilities (after the manifest's activation) under the class names predict gives ("0",
"1", ...), with the predicted class as `label`. Its raw logits were explained instead, as a
regressor's `logit_0`, while predict answered a probability and a label."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.functions.test_predict_events import body_of, http_event

ROW = [-3.0, 2.0, 1.0]


def logits(path: Path, weights: np.ndarray) -> Path:
    """logit = x @ weights + 0.5: a linear classifier's raw scores [N, C]."""
    classes = weights.shape[1]
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["m"]),
            helper.make_node("Add", ["m", "b"], ["logit"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("logit", TensorProto.FLOAT, [None, classes])],
        [
            helper.make_tensor("w", TensorProto.FLOAT, [3, classes], weights.reshape(-1).tolist()),
            helper.make_tensor("b", TensorProto.FLOAT, [classes], [0.5] * classes),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def post(service: PredictService, path: str, doc: Any) -> Any:
    answer = service.handle(http_event("POST", path, json.dumps(doc)))
    assert answer["statusCode"] == 200, body_of(answer)
    return body_of(answer)


@pytest.mark.parametrize(
    ("weights", "activation"),
    [
        (np.array([[0.3], [-0.2], [0.1]]), "sigmoid"),  # one logit: a binary classifier
        (np.array([[0.3, -0.1, 0.0], [-0.2, 0.4, 0.1], [0.1, 0.0, -0.3]]), "softmax"),
    ],
)
def test_an_unlabelled_classifier_is_explained_in_the_probabilities_predict_answers(
    tmp_path: Path, weights: np.ndarray, activation: str
) -> None:
    store = LocalStore(tmp_path / "store")
    path = logits(tmp_path / "model.onnx", weights)
    argv = ["--store", store.uri, "publish", str(path), "--name", "clf"]
    assert main([*argv, "--task", "classification", "--activation", activation]) == 0
    np.save(tmp_path / "train.npy", np.random.default_rng(0).normal(size=(30, 3)))
    assert main(["--store", store.uri, "baseline", "clf", str(tmp_path / "train.npy")]) == 0
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "clf"}, pool)
    predicted = post(service, "/models/clf/predict", {"inputs": [ROW]})["predictions"][0]
    doc = post(service, "/models/clf/explain", {"inputs": [ROW]})
    row = doc["explanations"][0]
    classes = max(2, weights.shape[1])
    assert doc["outputs"] == [str(c) for c in range(classes)]
    assert row["label"] == predicted["label"]
    best = doc["outputs"].index(row["label"])
    assert row["prediction"][best] == pytest.approx(predicted["score"], abs=1e-6)
    assert sum(row["prediction"]) == pytest.approx(1.0)
    # Additive, in probabilities: the attributions add up to the prediction less the base.
    totals = np.sum(row["attributions"], axis=0) + np.array(row["base_value"])
    assert totals == pytest.approx(row["prediction"], abs=1e-6)
    assert service.plane.drift is not None
    service.plane.drift.flush(last=True)  # its timer thread, holding the store open, ends
