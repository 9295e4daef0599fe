"""`aiaas compare` of two versions of a table whose columns came in another order.

A table with a text column is served one input per column, in its file's column order. A
weekly retrain on a CSV written `plan,churn,city,income,age` gave inputs `plan, city, income,
age` where production took `age, income, city, plan`, and `aiaas compare` refused the pair
("read different inputs ... so they must match") though every row feeds each version by input
name (hunt_journey8 3). A single input `x` read by position is another matter (the same
features in another order mean other values to each): still refused, now saying how to retrain.
Real ONNX graphs published by the real CLI on a directory store; the compared numbers are
checked against onnxruntime on the same rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from infra.cli.main import main
from tests import onnx_factory

WEIGHTS = {"age": [0.05, -0.05], "income": [-0.0001, 0.0001], "tenure": [0.3, -0.3]}


def _per_column(path: Path, columns: list[str]) -> Path:
    """One float32 [N, 1] input per column, listed in `columns`' order; logits = sum of each
    column times its weights (the same function whatever the order)."""
    nodes, terms = [], []
    for name in columns:
        nodes.append(helper.make_node("MatMul", [name, f"w_{name}"], [f"t_{name}"]))
        terms.append(f"t_{name}")
    nodes.append(helper.make_node("Sum", terms, ["logits"]))
    graph = helper.make_graph(
        nodes,
        "churn",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 1]) for n in columns],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])],
        initializer=[
            numpy_helper.from_array(np.array([WEIGHTS[n]], np.float32), f"w_{n}") for n in columns
        ],
    )
    return onnx_factory.save(graph, path)


def _single(path: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["logits"])],
        "churn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])],
        initializer=[numpy_helper.from_array(np.ones((3, 2), np.float32), "W")],
    )
    return onnx_factory.save(graph, path)


def _cli(store: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["--store", str(store), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_versions_reading_the_same_named_columns_in_another_order_are_compared(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    orders = (["age", "income", "tenure"], ["tenure", "income", "age"])
    for version, columns in enumerate(orders, start=1):
        path = _per_column(tmp_path / f"{version}.onnx", columns)
        argv = ("publish", str(path), "--name", "m", "--labels", "churn,stay")
        assert _cli(store, capsys, *argv)[0] == 0
    rng = np.random.default_rng(3)
    rows = np.column_stack(
        [rng.integers(18, 80, 40), rng.normal(5e4, 1e4, 40).round(), rng.integers(0, 40, 40)]
    ).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "1.onnx"))
    logits = session.run(None, {n: rows[:, [i]] for i, n in enumerate(orders[0])})[0]
    truth = np.array(["churn", "stay"])[logits.argmax(1)]  # what 1 answers, by onnxruntime
    assert len(set(truth)) == 2
    written = zip(rows.tolist(), truth, strict=True)
    lines = ["tenure,age,income,label"] + [f"{t:g},{a:g},{i:g},{y}" for (a, i, t), y in written]
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    code, out, err = _cli(
        store, capsys, "compare", "m", "1", "2", "--data", str(tmp_path / "rows.csv"), "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["rows"]["compared"] == 40, report
    assert report["agreement"]["agreed"] == 40, report  # the same function of named columns
    assert report["metrics"]["a"]["accuracy"] == report["metrics"]["b"]["accuracy"] == 1.0


def test_a_single_input_reading_its_features_in_another_order_says_how_to_retrain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    for version, features in (("1", "age,income,tenure"), ("2", "tenure,income,age")):
        argv = ("publish", str(_single(tmp_path / "x.onnx")), "--name", "m", "--version", version)
        assert _cli(store, capsys, *argv, "--features", features)[0] == 0
    (tmp_path / "rows.csv").write_text("age,income,tenure\n30,50000,2\n")
    code, _, err = _cli(
        store, capsys, "compare", "m", "1", "2", "--data", str(tmp_path / "rows.csv")
    )
    assert code == 1
    assert (
        "read different inputs: version 1 reads features age,income,tenure, 2 reads features "
        "tenure,income,age: the same features in another order, so a row means other values to "
        "each (a training spec without dataset.features takes its file's column order: retrain "
        "2 with dataset.features: [age, income, tenure]); compare scores one file with both"
    ) in err, err
