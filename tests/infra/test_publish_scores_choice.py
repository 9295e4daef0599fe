"""`aiaas publish --labels` of a network with two outputs as wide as its classes (an embedding
of that width beside the logits, or the logits beside their softmax): which holds the scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory


def logits_and_probabilities(path: Path) -> Path:
    """`logits` = x, `probabilities` = Softmax(x), both [N, 3]: what a network returning both
    exports."""
    graph = helper.make_graph(
        [
            helper.make_node("Identity", ["x"], ["logits"]),
            helper.make_node("Softmax", ["x"], ["probabilities"], axis=-1),
        ],
        "two_heads",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3]),
        ],
    )
    return onnx_factory.save(graph, path)


def publish(
    capsys: pytest.CaptureFixture[str], store: Path, path: Path, *argv: str
) -> tuple[int, str]:
    code = main(["--store", str(store), "publish", str(path), "--name", "net", *argv])
    out, err = capsys.readouterr()
    return code, out if code == 0 else err.strip()


def test_two_outputs_as_wide_as_the_classes_are_not_guessed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # outputs a = x + 1 and b = x * 2, both [N, 3]: the first was taken as the class scores, so
    # a model returning (embedding, logits) answered its embedding's argmax as the class.
    path = onnx_factory.two_outputs(tmp_path / "two.onnx")
    code, err = publish(capsys, tmp_path / "store", path, "--labels", "x,y,z")
    assert (code, err) == (
        1,
        "aiaas publish: error: outputs 'a', 'b' each have 3 columns, one per class; say which "
        "holds the class scores: --scores-output b (and --activation none if it already holds "
        "probabilities)",
    )
    assert not Registry(LocalStore(tmp_path / "store")).models()
    code, out = publish(
        capsys, tmp_path / "store", path, "--labels", "x,y,z", "--scores-output", "b"
    )
    assert code == 0 and "class scores from output 'b' (activation softmax)" in out


def test_logits_beside_their_softmax_take_the_probabilities(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = logits_and_probabilities(tmp_path / "heads.onnx")
    code, out = publish(capsys, tmp_path / "store", path, "--labels", "x,y,z")
    assert code == 0, out
    assert "class scores from output 'probabilities' (activation none)" in out


def sequence_scores(path: Path) -> Path:
    """`logits` = x, [N, 2, 3]: a token classifier's scores, 6 a row as serving reads them."""
    return onnx_factory.identity(path, shape=["N", 2, 3])


def test_labels_for_the_last_axis_of_more_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Only the last axis was compared with the labels: published, /predict refused every row
    # (6 class scores for 3 labels) and OIP's class_count ranked 6 classes without labels.
    path = sequence_scores(tmp_path / "seq.onnx")
    argv = ["--task", "classification", "--scores-output", "y", "--activation", "softmax"]
    code, err = publish(capsys, tmp_path / "store", path, *argv, "--labels", "a,b,c")
    assert (code, err) == (
        1,
        "aiaas publish: error: --labels lists 3 labels but the model has 6 classes (output 'y' "
        "has 6 scores per row, [N, 2, 3]: every axis after the batch one counts); give one "
        "label per class, in the model's order",
    )
    assert not Registry(LocalStore(tmp_path / "store")).models()


def classifier_beside_sequence(path: Path) -> Path:
    """A LinearClassifier of classes a, b, c (its `label` and `probabilities` [N, 3]) beside
    `seq`, x reshaped to [N, 2, 3]: the graph names 3 classes, `seq` holds 6 scores a row."""
    coefficients = np.arange(18, dtype=np.float32) / 18
    graph = helper.make_graph(
        [
            helper.make_node(
                "LinearClassifier",
                ["x"],
                ["label", "probabilities"],
                domain="ai.onnx.ml",
                classlabels_strings=["a", "b", "c"],
                coefficients=coefficients.tolist(),
                intercepts=[0.0, 0.0, 0.0],
                post_transform="SOFTMAX",
            ),
            helper.make_node("Reshape", ["x", "shape"], ["seq"]),
        ],
        "beside",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
        [
            helper.make_tensor_value_info("label", TensorProto.STRING, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("seq", TensorProto.FLOAT, ["N", 2, 3]),
        ],
        initializer=[numpy_helper.from_array(np.array([-1, 2, 3], dtype=np.int64), "shape")],
    )
    return onnx_factory.save(graph, path, ml=3)


def test_the_graphs_classes_must_fit_the_scores_output_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = classifier_beside_sequence(tmp_path / "beside.onnx")
    code, err = publish(capsys, tmp_path / "store", path, "--scores-output", "seq")
    assert (code, err) == (
        1,
        "aiaas publish: error: the model has 3 classes (a, b, c) but output 'seq' has 6 scores "
        "per row, [N, 2, 3]: every axis after the batch one counts; pass --scores-output naming "
        "the output with one score per class, [N, classes]",
    )
    assert not Registry(LocalStore(tmp_path / "store")).models()
    code, out = publish(capsys, tmp_path / "store", path)  # its own probabilities: taken
    assert code == 0 and "class scores from output 'probabilities'" in out, out
