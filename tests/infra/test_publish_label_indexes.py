"""A two-class tree ensemble shaped like CatBoost's ONNX export (`class_ids` 0 and 1 in every
leaf, LOGISTIC, integer classes): onnxruntime answers its `label` output 0/1, the index of the
class, whatever the classes are. Served as it was, an OIP client read 0/1 for classes 3/7, and
for classes 1/2 publish took the 1s for class `1` and reversed the labels, so every simple
JSON prediction was the other class. Published with no flags, every route now answers the class
the probabilities name, as CatBoost's own predict() does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from functions.runtime.manifest import ModelManifest
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.test_publish_classifiers import oip_infer, publish, service, simple_predict

ROWS = np.array([[-1.0], [0.2], [0.7], [3.0], [0.5], [0.51]], dtype=np.float32)


def catboost_like(classes: list[int], both_ids: bool = True) -> bytes:
    """One stump, x <= 0.5 -> the first class; each leaf scores both classes (CatBoost) or only
    the second (skl2onnx's binary trees, which onnxruntime answers with the classes)."""
    ids = [0, 1] if both_ids else [1]
    weights = [[0.7, -0.7], [-0.9, 0.9]] if both_ids else [[-0.7], [0.9]]
    node = helper.make_node(
        "TreeEnsembleClassifier", ["X"], ["label", "probabilities"], domain="ai.onnx.ml",
        nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[0, 0, 0],
        nodes_values=[0.5, 0.0, 0.0], nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"],
        nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0],
        nodes_missing_value_tracks_true=[0, 0, 0], nodes_hitrates=[1.0, 1.0, 1.0],
        class_treeids=[0] * 2 * len(ids), class_nodeids=[1] * len(ids) + [2] * len(ids),
        class_ids=ids * 2, class_weights=[w for leaf in weights for w in leaf],
        classlabels_int64s=classes, post_transform="LOGISTIC",
    )  # fmt: skip
    graph = helper.make_graph(
        [node],
        "catboost_like",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 1])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2]),
        ],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


@pytest.mark.parametrize("classes", [[3, 7], [1, 2], [-1, 1], [0, 1]])
def test_each_route_answers_the_class_the_probabilities_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, classes: list[int]
) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(catboost_like(classes))
    raw = ort.InferenceSession(str(path)).run(None, {"X": ROWS})
    expected = np.asarray(classes)[raw[1].argmax(axis=1)]  # the model's own predict()
    assert set(expected.tolist()) == set(classes)
    store = LocalStore(tmp_path / "store")
    out = publish(capsys, store, path)
    manifest: ModelManifest = Registry(store).manifest("wine", "1")
    indexes = classes != [0, 1]
    assert manifest.postprocessing is not None
    assert manifest.postprocessing.label_indexes is indexes
    assert manifest.labels == tuple(str(c) for c in classes)
    assert ("answers class indexes" in out) is indexes
    served = service(store, tmp_path)
    simple = simple_predict(served, ROWS)
    assert [p["label"] for p in simple["predictions"]] == [str(c) for c in expected]
    assert simple["outputs"]["label"] == expected.tolist()
    oip = oip_infer(served, ROWS)
    assert oip["label"]["data"] == expected.tolist()
    assert oip["label"]["datatype"] == "INT64"


@pytest.mark.parametrize("classes", [[3, 7], [1, 2]])
def test_a_tree_whose_label_output_answers_classes_is_served_as_it_is(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, classes: list[int]
) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(catboost_like(classes, both_ids=False))
    own = ort.InferenceSession(str(path)).run(None, {"X": ROWS})[0]
    assert set(own.tolist()) == set(classes)  # onnxruntime's binary case: the classes
    store = LocalStore(tmp_path / "store")
    publish(capsys, store, path)
    post = Registry(store).manifest("wine", "1").postprocessing
    assert post is not None and not post.label_indexes
    assert oip_infer(service(store, tmp_path), ROWS)["label"]["data"] == own.tolist()


def test_the_manifest_says_so_only_where_it_holds(tmp_path: Path) -> None:
    """Manifests of other classifiers are written as before; a flag without a label output is
    refused on reading."""
    import json

    from functions.runtime.errors import ManifestError

    path = tmp_path / "model.onnx"
    for classes, written in (([3, 7], True), ([0, 1], False)):
        path.write_bytes(catboost_like(classes))
        store = LocalStore(tmp_path / f"store-{written}")
        assert main(["--store", store.uri, "publish", str(path), "--name", "m"]) == 0
        doc = Registry(store).manifest("m", "1").to_dict()
        assert ("label_indexes" in doc["postprocessing"]) is written
    doc["postprocessing"] |= {"label_indexes": True, "label_output": None}
    with pytest.raises(ManifestError, match="label_indexes' needs a label_output"):
        ModelManifest.from_json(json.dumps(doc))
