"""`aiaas compare` of a model over windows of a fixed length ([N, 4, 3]) and its re-export of
any length ([N, -1, 3]), the upgrade a user of a GRU or 1-D CNN makes: it was refused as two
versions reading different inputs ("takes shape [-1, 4, 3], 2's [-1, -1, 3]; ... they must
match"), where a rollout takes the one for the other. The file is now read with the narrower
shape: a row only one version takes is a bad row, said by its line (hunt_journey9 2). Through
the real CLI, on onnx.helper models and a JSONL file of windows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from functions.runtime.store import LocalStore
from infra.cli.main import main


def _window_sum(path: Path, steps: int | str, scale: float) -> Path:
    """y = scale * the sum of a window [N, steps, 3]: [N, 1]."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", steps, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1])
    axes = helper.make_tensor("axes", TensorProto.INT64, [2], [1, 2])
    factor = helper.make_tensor("scale", TensorProto.FLOAT, [], [scale])
    nodes = [
        helper.make_node("ReduceSum", ["x", "axes"], ["summed"], keepdims=0),
        helper.make_node("Unsqueeze", ["summed", "one"], ["column"]),
        helper.make_node("Mul", ["column", "scale"], ["y"]),
    ]
    one = helper.make_tensor("one", TensorProto.INT64, [1], [1])
    graph = helper.make_graph(nodes, "w", [x], [y], [axes, factor, one])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("order", [("1", "2"), ("2", "1")])
def test_a_fixed_length_and_an_any_length_version_are_compared(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], order: tuple[str, str]
) -> None:
    store = LocalStore(tmp_path / "store").uri
    fixed = _window_sum(tmp_path / "fixed.onnx", 4, 1.0)
    anylength = _window_sum(tmp_path / "any.onnx", "t", 2.0)
    assert main(["--store", store, "publish", str(fixed), "--name", "w"]) == 0
    assert main(["--store", store, "publish", str(anylength), "--name", "w"]) == 0
    windows = np.random.default_rng(0).normal(size=(5, 4, 3)).round(3)
    lines = [json.dumps({"x": window.tolist(), "label": 0.0}) for window in windows]
    lines.insert(2, json.dumps({"x": windows[0][:2].tolist(), "label": 0.0}))  # 2 steps
    (tmp_path / "windows.jsonl").write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    argv = ["--store", store, "compare", "w", *order, "--data", str(tmp_path / "windows.jsonl")]
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "5 rows compared, 1 not" in out, out
    # B answers twice A's sums (or half of them): its largest difference is one sum's size.
    sums = np.abs(windows.sum(axis=(1, 2))).max()
    said = float(out.split("max |B-A| ")[1].split(",")[0])
    assert said == pytest.approx(sums, rel=1e-3)
    assert "line 3: input 'x' must have shape [4, 3] per row; got [2, 3]" in out


def test_versions_of_two_fixed_lengths_are_still_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store").uri
    assert (
        main(
            [
                "--store",
                store,
                "publish",
                str(_window_sum(tmp_path / "a.onnx", 4, 1.0)),
                "--name",
                "w",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "--store",
                store,
                "publish",
                str(_window_sum(tmp_path / "b.onnx", 5, 1.0)),
                "--name",
                "w",
            ]
        )
        == 0
    )
    (tmp_path / "w.jsonl").write_text(json.dumps({"x": np.zeros((4, 3)).tolist()}) + "\n")
    capsys.readouterr()
    assert (
        main(["--store", store, "compare", "w", "1", "2", "--data", str(tmp_path / "w.jsonl")]) == 1
    )
    assert "version 1's input 'x' takes shape [-1, 4, 3], 2's [-1, 5, 3]" in capsys.readouterr().err
