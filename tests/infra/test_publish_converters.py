"""Models from the converters users run beside skl2onnx's defaults, published with no flags and
served through the predict handler: onnxmltools' LightGBM and XGBoost exports, LightGBM inside
a scikit-learn pipeline through skl2onnx's registered converter (the documented
`update_registered_converter` path), and skl2onnx's zipmap='columns'. Every answer (simple JSON
and OIP) equals onnxruntime's own on the same rows. Tiny fits: 5 trees, ~50 rows.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import onnxruntime as ort
import pytest
import xgboost
from onnxmltools import convert_lightgbm, convert_xgboost
from onnxmltools.convert.common.data_types import FloatTensorType
from skl2onnx import to_onnx
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.functions.test_predict_events import body_of, http_event
from tests.infra.test_publish_classifiers import publish, refused, service, simple_predict

TREES = {"n_estimators": 5, "num_leaves": 4, "min_child_samples": 3, "verbose": -1, "n_jobs": 1}
LOADERS = {"binary": load_breast_cancer, "multiclass": load_iris, "regression": load_diabetes}
IRIS = np.array(["setosa", "versicolor", "virginica"])


@functools.cache
def rows(task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test) float32: every third row to train, 20 others to answer."""
    x, y = LOADERS[task](return_X_y=True)
    x = x.astype(np.float32)
    return x[::3][:60], y[::3][:60], x[1::7][:20]


def _typed(x: np.ndarray) -> list[tuple[str, FloatTensorType]]:
    return [("input", FloatTensorType([None, x.shape[1]]))]


def lightgbm_onnxmltools(task: str) -> Any:
    x, y, _ = rows(task)
    if task == "regression":
        return convert_lightgbm(lightgbm.LGBMRegressor(**TREES).fit(x, y), initial_types=_typed(x))
    target = IRIS[y] if task == "multiclass" else y  # string classes: LightGBM keeps them
    model = lightgbm.LGBMClassifier(**TREES).fit(x, target)
    return convert_lightgbm(model, initial_types=_typed(x))


def lightgbm_skl2onnx(task: str) -> Any:
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import (
        convert_lightgbm as lightgbm_converter,
    )
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    update_registered_converter(
        lightgbm.LGBMClassifier,
        "LightGbmLGBMClassifier",
        calculate_linear_classifier_output_shapes,
        lightgbm_converter,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )
    update_registered_converter(
        lightgbm.LGBMRegressor,
        "LightGbmLGBMRegressor",
        calculate_linear_regressor_output_shapes,
        lightgbm_converter,
        options={"split": None},
    )
    x, y, _ = rows(task)
    kind = lightgbm.LGBMRegressor if task == "regression" else lightgbm.LGBMClassifier
    pipeline = make_pipeline(StandardScaler(), kind(**TREES)).fit(x, y)
    return to_onnx(pipeline, x[:1], target_opset={"": 17, "ai.onnx.ml": 3})


def xgboost_onnxmltools(task: str) -> Any:
    x, y, _ = rows(task)
    kind = xgboost.XGBRegressor if task == "regression" else xgboost.XGBClassifier
    return convert_xgboost(
        kind(n_estimators=5, max_depth=2, n_jobs=1).fit(x, y), initial_types=_typed(x)
    )


CONVERTERS: dict[str, Callable[[str], Any]] = {
    "lightgbm-onnxmltools": lightgbm_onnxmltools,
    "lightgbm-skl2onnx": lightgbm_skl2onnx,
    "xgboost-onnxmltools": xgboost_onnxmltools,
}
CASES = [(c, t) for c in CONVERTERS for t in LOADERS]


@functools.cache
def exported(converter: str, task: str) -> bytes:
    return CONVERTERS[converter](task).SerializeToString()  # type: ignore[no-any-return]


def onnxruntime_answers(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    """onnxruntime's own outputs; a ZipMap's list of {class: probability} as a matrix."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    answers = session.run(None, {session.get_inputs()[0].name: x})
    found = {}
    for arg, value in zip(session.get_outputs(), answers, strict=True):
        if isinstance(value, list):
            value = [list(row.values()) for row in value]
        found[arg.name] = np.asarray(value)
    return found


def assert_same(served: Any, own: np.ndarray) -> None:
    if own.dtype.kind == "f":
        np.testing.assert_allclose(np.ravel(served), own.ravel(), rtol=1e-5, atol=1e-6)
    else:
        assert [str(v) for v in np.ravel(served)] == [str(v) for v in own.ravel()]


@pytest.mark.parametrize(("converter", "task"), CASES, ids=[f"{c}-{t}" for c, t in CASES])
def test_a_converted_model_answers_what_onnxruntime_answers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, converter: str, task: str
) -> None:
    store = LocalStore(tmp_path / "store")
    path = tmp_path / "model.onnx"
    path.write_bytes(exported(converter, task))
    publish(capsys, store, path)  # no flags: everything comes from the graph
    manifest = Registry(store).manifest("wine", "1")
    x = rows(task)[2]
    own = onnxruntime_answers(path, x)
    served = service(store, tmp_path)
    body = simple_predict(served, x)
    assert set(body["outputs"]) == set(own)
    for name, values in own.items():
        assert_same(body["outputs"][name], values)

    event = http_event("GET", "/v2/models/wine")
    metadata = {o["name"]: o for o in body_of(served.handle(event))["outputs"]}
    doc = {"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32"}]}
    doc["inputs"][0].update(name=manifest.inputs[0].name, data=x.ravel().tolist())
    answer = served.handle(http_event("POST", "/v2/models/wine/infer", json.dumps(doc)))
    assert answer["statusCode"] == 200, answer["body"]
    for output in body_of(answer)["outputs"]:
        assert_same(output["data"], own[output["name"]])
        assert output["shape"][0] == len(x)

    if task == "regression":
        # Read from the graph (a TreeEnsembleRegressor); it said "other" before.
        assert (manifest.task, manifest.postprocessing) == ("regression", None)
        return
    post = manifest.postprocessing
    assert manifest.task == "classification" and post is not None and post.label_output
    assert [p["label"] for p in body["predictions"]] == [str(v) for v in own[post.label_output]]
    named = converter == "lightgbm-onnxmltools" and task == "multiclass"
    classes = IRIS if named else np.unique(rows(task)[1])
    assert manifest.labels == tuple(str(c) for c in classes)
    scores = own[post.scores_output].max(axis=1)
    assert_same([p["score"] for p in body["predictions"]], scores)
    # onnxmltools' LightGBM declares its label output [1]: one class a row, any number of rows.
    assert next(o for o in manifest.outputs if o.name == post.label_output).shape == (-1,)
    assert metadata[post.label_output]["shape"] == [-1]


@pytest.mark.parametrize("objective", ["poisson", "gamma", "tweedie"])
def test_a_log_link_regressor_is_a_regression(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, objective: str
) -> None:
    """onnxmltools writes a Poisson/Gamma/Tweedie LightGBM as Exp(TreeEnsembleRegressor): it
    was published as task `other` (no R2, RMSE or residuals from --data)."""
    x, y, test = rows("regression")
    model = lightgbm.LGBMRegressor(objective=objective, **TREES).fit(x, y)
    path = tmp_path / "model.onnx"
    path.write_bytes(convert_lightgbm(model, initial_types=_typed(x)).SerializeToString())
    store = LocalStore(tmp_path / "store")
    publish(capsys, store, path)
    assert Registry(store).manifest("wine", "1").task == "regression"
    served = simple_predict(service(store, tmp_path), test)["outputs"]
    np.testing.assert_allclose(
        np.ravel(next(iter(served.values()))), model.predict(test), rtol=1e-4
    )


# ---- skl2onnx's zipmap='columns': one output per class ----------------------------------------


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_one_output_per_class_is_refused_with_the_export_option_to_use(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, task: str
) -> None:
    """Reported: every row got the same wrong label (i0, one class's probability, was read as
    a binary classifier's one score)."""
    x, y, x_test = rows(task)
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y)
    path = tmp_path / "columns.onnx"
    proto = to_onnx(model, x[:1], options={id(model): {"zipmap": "columns"}})
    path.write_bytes(proto.SerializeToString())
    store = LocalStore(tmp_path / "store")
    columns = ", ".join(f"'i{c}'" for c in model.classes_)
    assert refused(capsys, store, path) == (
        f"outputs {columns} each hold one class's probability (skl2onnx's zipmap='columns'); "
        "aiaas reads a classifier's scores from one output with a column per class: export with "
        "options={id(model): {'zipmap': False}} (or skl2onnx's default ZipMap), or publish with "
        "--task other to serve these outputs as they are"
    )
    if task == "multiclass":  # one score a row is a binary classifier's positive class
        assert refused(capsys, store, path, "--scores-output", "i0") == (
            "--scores-output 'i0' has one score per row but the model has 3 classes; a "
            "classifier's scores output has one column per class"
        )

    publish(capsys, store, path, "--task", "other")  # what the message offers works
    body = simple_predict(service(store, tmp_path), x_test)
    for name, values in onnxruntime_answers(path, x_test).items():
        assert_same(body["outputs"][name], values)


def test_a_network_with_a_logit_and_its_probability_is_a_binary_classifier(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Two one-score outputs and no label output (a network's logit and its sigmoid) are not
    skl2onnx's zipmap='columns': published, its probability read as the positive class's."""
    from onnx import TensorProto, helper, save

    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["logit"]),
            helper.make_node("Sigmoid", ["logit"], ["probability"]),
        ],
        "net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [
            helper.make_tensor_value_info("logit", TensorProto.FLOAT, ["N", 1]),
            helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["N", 1]),
        ],
        initializer=[helper.make_tensor("w", TensorProto.FLOAT, [2, 1], [1.0, -1.0])],
    )
    path = tmp_path / "net.onnx"
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    store = LocalStore(tmp_path / "store")
    out = publish(capsys, store, path, "--labels", "neg,pos")  # refused: "zipmap='columns'"
    # Either is right: the logit with a sigmoid, or the probability as it is.
    assert "class scores from output 'logit' (activation sigmoid)" in out
    body = simple_predict(service(store, tmp_path), np.array([[2.0, 0.0], [0.0, 2.0]]))
    assert [row["label"] for row in body["predictions"]] == ["pos", "neg"]
    sigmoid_2 = 1 / (1 + np.exp(-2.0))
    assert [row["score"] for row in body["predictions"]] == pytest.approx([sigmoid_2] * 2)
