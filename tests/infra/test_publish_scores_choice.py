"""`aiaas publish --labels` of a network with two outputs as wide as its classes (an embedding
of that width beside the logits, or the logits beside their softmax): which holds the scores."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

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
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


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
