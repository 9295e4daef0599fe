"""publish's renamed-output warning speaks of the version callers get, and only where the new
version takes its requests (rev11 3): it compared with the newest version (an experiment's
outputs, advising the wrong names), said nothing of the missing labels beside it, warned of
outputs where the inputs differed (renaming would not make it rollable), and `--task` turned it
off. The real CLI on a real directory store, ONNX files built with onnx.helper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from infra.cli.main import main
from tests import onnx_factory

LABELS = "cat,dog,fox"


def _model(path: Path, output: str, width: int = 4) -> Path:
    """x float32 [N, width] -> `output` [N, 3]."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], [output])],
        "scores",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", width])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", 3])],
        initializer=[numpy_helper.from_array(np.ones((width, 3), np.float32), "W")],
    )
    return onnx_factory.save(graph, path)


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """w:1 `logits` with labels, @production; w:2 an experiment answering `probs` too."""
    root = tmp_path / "store"
    first = ["publish", str(_model(tmp_path / "a.onnx", "logits")), "--labels", LABELS]
    assert _publish(root, capsys, *first, "--alias", "production")[0] == 0
    experiment = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"]),
        ],
        "two",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 3]),
        ],
        initializer=[numpy_helper.from_array(np.ones((4, 3), np.float32), "W")],
    )
    path = onnx_factory.save(experiment, tmp_path / "two.onnx")
    assert (
        _publish(
            root, capsys, "publish", str(path), "--scores-output", "probs", "--labels", LABELS
        )[0]
        == 0
    )
    return root


def _publish(root: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["--store", str(root), *argv[:1], "--name", "w", *argv[1:]])
    return code, capsys.readouterr().out


def test_compared_with_the_version_callers_get(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """w:2 (the newest) answers `probs`; production (w:1) does not: a republish of w:1's file
    was told to export `output_names=['logits', 'probs']`."""
    code, out = _publish(store, capsys, "publish", str(tmp_path / "a.onnx"), "--labels", LABELS)
    assert code == 0 and "warning" not in out, out
    code, out = _publish(
        store, capsys, "publish", str(_model(tmp_path / "b.onnx", "linear_1")), "--labels", LABELS
    )
    assert code == 0, out
    assert "warning: w:1 answered output 'logits'; this version answers 'linear_1'" in out, out
    assert "output_names=['logits'] to answer as before" in out, out


def test_renamed_and_unlabelled_are_both_said(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _publish(store, capsys, "publish", str(_model(tmp_path / "b.onnx", "linear_1")))
    assert code == 0, out
    assert "warning: w:1 answered output 'logits'; this version answers 'linear_1'" in out, out
    assert "this version has none and answers output 'linear_1' as it is" in out, out


def test_no_output_advice_where_the_inputs_differ(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """x [N, 5] after x [N, 4]: renaming the output would not make it take production's
    requests; the rollout's refusal names the input."""
    path = _model(tmp_path / "wide.onnx", "linear_1", width=5)
    code, out = _publish(store, capsys, "publish", str(path), "--labels", LABELS)
    assert code == 0 and "answered output" not in out, out


def test_task_does_not_turn_it_off(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Callers name outputs whatever the task: --task classification warned of nothing."""
    path = _model(tmp_path / "b.onnx", "linear_1")
    argv = ("publish", str(path), "--task", "classification", "--labels", LABELS)
    code, out = _publish(store, capsys, *argv)
    assert code == 0, out
    assert "warning: w:1 answered output 'logits'; this version answers 'linear_1'" in out, out
