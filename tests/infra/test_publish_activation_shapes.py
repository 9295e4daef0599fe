"""Scores outputs a user's own export ends in, and the activation publish gives them
(from a hunt on models from other converters, notes hunt_conv.md). Each was mis-served:

- one logit a row as [N] (`fc(x).squeeze(-1)`): given a softmax, always 1: every row class 0;
- probabilities through another node (`softmax(z)[:, 1:2]`, `sigmoid(z).clamp(...)`, an
  ensemble's average, `log_softmax(z).exp()`): a second sigmoid or softmax, every binary row
  positive and every multi-class score wrong;
- a tree ensemble's margins (onnxmltools' XGBoost multi:softmax, post_transform NONE) served as
  probabilities (3.118 where predict_proba says 0.9919): now refused, naming --activation;
- scores [classes, N] (a transposed export): 4 rows answered 3 predictions; now refused.

Published with the real CLI, answered through the real predict handler.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.functions.test_predict_events import body_of, http_event

RNG = np.random.default_rng(0)
W1, W2 = RNG.normal(size=(3, 3)).astype(np.float32), RNG.normal(size=(3, 3)).astype(np.float32)
ROWS = RNG.normal(size=(40, 3)).astype(np.float32)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))  # type: ignore[no-any-return]


def _const(name: str, values: Any, dtype: Any = np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


# name: (nodes after z1 = x @ W1 and z2 = x @ W2, output shape, the positive/class
# probabilities numpy says, labels)
ENDINGS: dict[str, tuple[list[onnx.NodeProto], list[Any], np.ndarray, str]] = {
    "rank1": (
        [helper.make_node("Slice", ["z1", "s0", "s1", "ax"], ["one"]),
         helper.make_node("Squeeze", ["one", "ax"], ["out"])],
        ["N"], _sigmoid(ROWS @ W1[:, :1])[:, 0], "neg,pos",
    ),
    "slice": (
        [helper.make_node("Softmax", ["z1"], ["p"], axis=1),
         helper.make_node("Slice", ["p", "s1", "s2", "ax"], ["out"])],
        ["N", 1], _softmax(ROWS @ W1)[:, 1], "neg,pos",
    ),
    "clip": (
        [helper.make_node("Slice", ["z1", "s0", "s1", "ax"], ["one"]),
         helper.make_node("Sigmoid", ["one"], ["p"]),
         helper.make_node("Clip", ["p", "lo", "hi"], ["out"])],
        ["N", 1], np.clip(_sigmoid(ROWS @ W1[:, :1])[:, 0], 1e-6, 1.0), "neg,pos",
    ),
    "average": (
        [helper.make_node("Softmax", ["z1"], ["p1"], axis=1),
         helper.make_node("Softmax", ["z2"], ["p2"], axis=1),
         helper.make_node("Add", ["p1", "p2"], ["sum"]),
         helper.make_node("Div", ["sum", "two"], ["out"])],
        ["N", 3], (_softmax(ROWS @ W1) + _softmax(ROWS @ W2)) / 2, "a,b,c",
    ),
    "logsoftmax-exp": (
        [helper.make_node("LogSoftmax", ["z1"], ["lp"], axis=1),
         helper.make_node("Exp", ["lp"], ["out"])],
        ["N", 3], _softmax(ROWS @ W1), "a,b,c",
    ),
}  # fmt: skip


def _model(path: Path, nodes: list[onnx.NodeProto], shape: list[Any]) -> Path:
    constants = [
        _const("W1", W1), _const("W2", W2), _const("lo", 1e-6), _const("hi", 1.0),
        _const("two", 2.0), _const("ax", [1], np.int64), _const("s0", [0], np.int64),
        _const("s1", [1], np.int64), _const("s2", [2], np.int64),
    ]  # fmt: skip
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W1"], ["z1"]),
         helper.make_node("MatMul", ["x", "W2"], ["z2"]), *nodes],
        "ending",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, shape)],
        initializer=constants,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _served(store: LocalStore, root: Path, name: str) -> list[dict[str, Any]]:
    pool = ModelPool(Registry(store), ArtifactCache(store, root / "cache"))
    service = service_from_env({"AIAAS_MODEL": name}, pool)
    body = json.dumps({"inputs": ROWS.tolist()})
    response = service.handle(http_event("POST", f"/models/{name}/predict", body))
    assert response["statusCode"] == 200, response["body"]
    return body_of(response)["predictions"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_each_ending_is_served_as_the_model_means(
    tmp_path: Path, ending: str, capsys: pytest.CaptureFixture[str]
) -> None:
    nodes, shape, probabilities, labels = ENDINGS[ending]
    path = _model(tmp_path / "m.onnx", nodes, shape)
    store = LocalStore(tmp_path / "store")
    code = main(["--store", store.uri, "publish", str(path), "--name", "m", "--labels", labels])
    assert code == 0, capsys.readouterr().err
    activation = "sigmoid" if ending == "rank1" else "none"
    assert f"class scores from output 'out' (activation {activation})" in capsys.readouterr().out
    served = _served(store, tmp_path, "m")
    names = labels.split(",")
    if probabilities.ndim == 1:  # one score a row: the positive class's probability
        probabilities = np.stack([1 - probabilities, probabilities], axis=1)
    assert [p["label"] for p in served] == [names[i] for i in probabilities.argmax(axis=1)]
    assert len({p["label"] for p in served}) > 1
    np.testing.assert_allclose([p["score"] for p in served], probabilities.max(axis=1), rtol=1e-5)


def test_scores_with_the_batch_axis_last_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    transpose = [helper.make_node("Transpose", ["z1"], ["out"], perm=[1, 0])]
    path = _model(tmp_path / "t.onnx", transpose, [3, "N"])
    store = LocalStore(tmp_path / "store")
    assert main(["--store", store.uri, "publish", str(path), "--name", "t", "--labels", "a,b,c"])
    assert capsys.readouterr().err.strip() == (
        "aiaas publish: error: output 'out' is [3, N]: its batch axis comes last; a classifier's "
        "scores are [N, classes]: export them untransposed"
    )


def _margins_model(path: Path, weights: tuple[float, ...] = (3.118, -2.088, -2.784)) -> Path:
    """A one-leaf TreeEnsembleClassifier with no post_transform answering `weights`: margins,
    as onnxmltools converts XGBoost's multi:softmax."""
    tree = helper.make_node(
        "TreeEnsembleClassifier", ["x"], ["label", "probabilities"], domain="ai.onnx.ml",
        nodes_treeids=[0], nodes_nodeids=[0], nodes_featureids=[0], nodes_modes=["LEAF"],
        nodes_values=[0.0], nodes_truenodeids=[0], nodes_falsenodeids=[0],
        class_treeids=[0, 0, 0], class_nodeids=[0, 0, 0], class_ids=[0, 1, 2],
        class_weights=list(weights), classlabels_int64s=[0, 1, 2],
        post_transform="NONE",
    )  # fmt: skip
    graph = helper.make_graph(
        [tree], "margins",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3])],
    )  # fmt: skip
    return onnx_factory.save(graph, path, ml=3)


def test_tree_margins_are_not_served_as_probabilities(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _margins_model(tmp_path / "x.onnx")
    store = LocalStore(tmp_path / "store")
    assert main(["--store", store.uri, "publish", str(path), "--name", "x"]) == 1
    assert capsys.readouterr().err.strip() == (
        "aiaas publish: error: output 'probabilities' answered 3.118 for a made-up row: scores "
        "outside [0, 1] are no probabilities (margins, as XGBoost's multi:softmax exports them); "
        "pass --activation softmax to serve probabilities, or --activation none to serve these "
        "scores as they are"
    )
    command = ["publish", str(path), "--name", "x", "--activation", "softmax"]
    assert main(["--store", store.uri, *command]) == 0
    served = _served(store, tmp_path, "x")
    expected = _softmax(np.array([[3.118, -2.088, -2.784]]))[0]
    assert {p["label"] for p in served} == {"0"}
    np.testing.assert_allclose(served[0]["score"], expected.max(), rtol=1e-5)


def test_scores_outside_0_1_whose_rows_sum_to_1_are_not_told_to_take_a_softmax(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows that sum to 1 are no margins: the refusal advised `--activation softmax` for them
    too, which serves [1.25, -0.125, -0.125] as [0.62, 0.19, 0.19]."""
    path = _margins_model(tmp_path / "x.onnx", (1.25, -0.125, -0.125))
    store = LocalStore(tmp_path / "store")
    assert main(["--store", store.uri, "publish", str(path), "--name", "x"]) == 1
    assert capsys.readouterr().err.strip() == (
        "aiaas publish: error: output 'probabilities' answered 1.25 for a made-up row: scores "
        "outside [0, 1] are no probabilities, yet each row sums to 1 as probabilities do, so no "
        "margins a softmax would turn into them; pass --activation none to serve these scores "
        "as they are"
    )


def test_scores_that_do_not_fit_the_labels_are_an_error_not_index_labels(tmp_path: Path) -> None:
    """A version published before [N] meant one logit (softmax over one column) answered '0' at
    1.0 for every row, '0' being no class of its labels: serving now says what is wrong."""
    from functions.runtime.batch.scoring import label_and_score
    from functions.runtime.codecs.simple import encode
    from functions.runtime.errors import AiaasError
    from functions.runtime.manifest import Postprocessing
    from tests.onnx_factory import linear_classifier, manifest_for

    path = linear_classifier(tmp_path / "l.onnx", classes=3)
    manifest = manifest_for(path, "l", "4", labels=("neg", "pos"))
    manifest = replace(manifest, postprocessing=Postprocessing("logits"))
    scores = {"logits": np.zeros((2, 3), np.float32)}
    expected = "l:4 answered 3 class scores a row but names 2 classes; republish it"
    for answer in (
        lambda: encode(manifest, scores),
        lambda: label_and_score(manifest, scores["logits"]),
    ):
        with pytest.raises(AiaasError, match=expected) as info:
            answer()
        assert info.value.public_message.startswith(expected)


def test_data_for_a_model_with_several_columns_and_no_classes_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its column 0 (class 0's logit) was scored as the value against digit labels: RMSE 11.9
    and R2 -16 went onto its card, under docs/text.md's own example command (docs walk)."""
    from tests.onnx_factory import linear_classifier

    path = linear_classifier(tmp_path / "l.onnx", features=3)
    np.savez(tmp_path / "d.npz", x=ROWS, y=np.arange(len(ROWS)) % 3)
    store = LocalStore(tmp_path / "store")
    argv = [
        "--store",
        store.uri,
        "publish",
        str(path),
        "--name",
        "l",
        "--data",
        str(tmp_path / "d.npz"),
    ]
    assert main(argv) == 1
    assert "output 'logits' holds 3 values a row and the model names no classes" in (
        capsys.readouterr().err
    )
    assert main([*argv, "--labels", "a,b,c"]) == 0
