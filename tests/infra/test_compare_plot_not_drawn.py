"""`aiaas compare --png` says in the picture which rows it leaves out.

A candidate that answers NaN on some rows (a refused row: docs/rollout.md, "Rows a version
refuses") is compared on the rest, as the text report says (`887 rows compared, 113 not`). The
picture said only "agreement 100.0%": pasted into a review, it read as a candidate that never
fails. Its title now says how many rows it does not hold, and why. Real ONNX models, published
to a directory store, compared by the CLI, the PNG drawn from its report.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from infra.cli.main import main

W = np.array([[1.0, -1.0, 0.5], [-0.5, 1.0, 0.25]], np.float32)


def classifier(path: Path, nan_below_zero: bool) -> Path:
    """softmax(x @ W); with `nan_below_zero` plus 0 * (sqrt(x) @ 0): NaN where a value < 0."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["logits"])]
    nodes.append(helper.make_node("Softmax", ["logits"], ["p" if nan_below_zero else "probs"]))
    inits = [numpy_helper.from_array(W, "w")]
    if nan_below_zero:
        inits.append(numpy_helper.from_array(np.zeros((2, 3), np.float32), "zero"))
        nodes += [
            helper.make_node("Sqrt", ["x"], ["root"]),
            helper.make_node("MatMul", ["root", "zero"], ["nothing"]),
            helper.make_node("Add", ["p", "nothing"], ["probs"]),
        ]
    graph = helper.make_graph(
        nodes,
        "clf",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", 3])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_the_picture_says_which_rows_it_leaves_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    for nan in (False, True):
        path = classifier(tmp_path / f"v{int(nan)}.onnx", nan)
        argv = ["--store", store, "publish", str(path), "--name", "clf", "--labels", "a,b,c"]
        assert main([*argv, "--features", "f0,f1"]) == 0
    rows = np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32)
    negative = int((rows < 0).any(axis=1).sum())  # the rows version 2 answers NaN on
    assert 0 < negative < len(rows)
    data = tmp_path / "rows.csv"
    data.write_text("f0,f1\n" + "".join(f"{a},{b}\n" for a, b in rows.tolist()))
    png = tmp_path / "clf.png"
    capsys.readouterr()
    argv = ["--store", store, "compare", "clf", "1", "2", "--data", str(data), "--no-progress"]
    assert main([*argv, "--json", "--png", str(png)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"]["compared"] == len(rows) - negative
    assert report["rows"]["refused"] == {"a": 0, "b": negative, "both": 0}
    assert report["agreement"]["rate"] == 1.0  # on the rows both answered
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    from infra.cli.compare_plot import _confusion
    from infra.cli.pyplot import pyplot

    plt = pyplot()
    figure = _confusion(plt, report)
    title = figure.axes[0].get_title()
    plt.close(figure)
    drawn = sum(sum(row) for row in report["confusion"]["matrix"])
    assert drawn == len(rows) - negative
    assert title == (
        f"clf: 1 vs 2, agreement 100.0%\n{negative} of {len(rows)} rows not drawn "
        f"({negative} refused by B only)"
    )


def test_a_picture_of_every_row_says_nothing_more(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    path = classifier(tmp_path / "v.onnx", False)
    for _ in range(2):
        argv = ["--store", store, "publish", str(path), "--name", "clf", "--labels", "a,b,c"]
        assert main([*argv, "--features", "f0,f1"]) == 0
    data = tmp_path / "rows.csv"
    data.write_text("f0,f1\n1,2\n3,-4\n")
    capsys.readouterr()
    argv = ["--store", store, "compare", "clf", "1", "2", "--data", str(data), "--no-progress"]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)

    from infra.cli.compare_plot import _confusion
    from infra.cli.pyplot import pyplot

    plt = pyplot()
    figure = _confusion(plt, report)
    assert figure.axes[0].get_title() == "clf: 1 vs 2, agreement 100.0%"
    plt.close(figure)
