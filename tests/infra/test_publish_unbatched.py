"""An image classifier exported without a batch axis ([3, H, W] -> [5]): publish with --labels
said its output "has one score per row but the model has 5 classes", where the output is the
five scores of one image. It now says so, and how to export with a batch axis."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import EXIT_ERROR, run


def unbatched(path: Path) -> Path:
    """y [5] = the mean of each channel of x [3, 9, 7] @ W [3, 5]."""
    weights = np.arange(15, dtype=np.float32).reshape(3, 5) / 10
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["x"], ["m"], axes=[1, 2], keepdims=0),
            helper.make_node("MatMul", ["m", "w"], ["y"]),
        ],
        "unbatched",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 9, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5])],
        initializer=[numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def test_labels_for_an_unbatched_classifier_say_to_export_a_batch_axis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    path = unbatched(tmp_path / "nobatch.onnx")
    argv = ["--store", store.uri, "publish", str(path), "--name", "nobatch", "--no-progress"]
    assert run([*argv, "--labels", "a,b,c,d,e"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "output 'y' is [5]: the 5 class scores of one input with no batch axis" in err, err
    assert "x.unsqueeze(0)" in err and "one score per row" not in err
    assert not Registry(store).models()
