"""`aiaas explain --file` with an `inf` cell: the row the file holds is explained. The rows went
to the explain data plane as JSON, which has no infinity: orjson wrote it as null, a missing
value, so a model published with --allow-nonfinite (a tree: missing and +inf take different
branches) was explained for the NaN row, and a model taking finite numbers refused the row as
"a missing value (null)", with numpy's overflow warning on stderr for a 1e39 cell."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.infra.test_cli_explain import FEATURES, cli, store, write_csv

__all__ = ["store"]  # the fixture: a linear classifier published as iris:1


def inf_or_nan(path: Path) -> Path:
    """Y = sum over a row of isinf(x) + 2 isnan(x): 1 for an infinity, 2 for a missing value."""
    nodes = [
        helper.make_node("IsInf", ["X"], ["i"]),
        helper.make_node("IsNaN", ["X"], ["n"]),
        helper.make_node("Cast", ["i"], ["fi"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["n"], ["fn"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["fn", "two"], ["fn2"]),
        helper.make_node("Add", ["fi", "fn2"], ["s"]),
        helper.make_node("MatMul", ["s", "ones"], ["Y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])],
        [
            helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]),
            helper.make_tensor("ones", TensorProto.FLOAT, [2, 1], [1.0, 1.0]),
        ],
    )
    return onnx_factory.save(graph, path)


def test_an_inf_cell_is_explained_as_infinity_for_a_model_that_takes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    path = inf_or_nan(tmp_path / "nvi.onnx")
    argv = ["publish", str(path), "--name", "nvi", "--features", "a,b", "--task", "regression"]
    assert cli(store, capsys, *argv, "--allow-nonfinite")[0] == 0
    np.save(tmp_path / "train.npy", np.random.default_rng(0).normal(size=(20, 2)))
    assert cli(store, capsys, "baseline", "nvi", str(tmp_path / "train.npy"))[0] == 0
    (tmp_path / "rows.csv").write_text("a,b\n1,inf\n1,\n1,-inf\n")
    code, out, err = cli(store, capsys, "explain", "nvi", "--file", str(tmp_path / "rows.csv"))
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    # inf and -inf are infinity (1), the empty cell a missing value (2): as `aiaas batch`.
    assert [line["prediction"] for line in lines] == [[1.0], [2.0], [1.0]], out
    assert lines[0]["attributions"] == [[0.0], [1.0]]


def test_an_inf_cell_to_a_finite_model_is_refused_as_infinity(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_csv(tmp_path / "train.csv", np.random.default_rng(0).normal(size=(20, 4)))
    assert cli(store, capsys, "baseline", "iris", str(data))[0] == 0
    (tmp_path / "rows.csv").write_text(f"{FEATURES}\n1,2,3,inf\n1,2,3,1e39\n1,2,3,4\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, _ = cli(store, capsys, "explain", "iris", "--file", str(tmp_path / "rows.csv"))
    assert code == 1 and not [w for w in caught if w.category is RuntimeWarning], caught
    lines = [json.loads(line) for line in out.splitlines()]
    assert "infinity" in lines[0]["error"] and "missing" not in lines[0]["error"], lines[0]
    assert "out of float32's range" in lines[1]["error"], lines[1]
    assert "prediction" in lines[2]


def overflowing(path: Path) -> Path:
    """Y = sum of a float64 row, cast to float32: a finite row past float32's range (1e39)
    answers infinity, as a float64 pipeline ending in float32 does."""
    nodes = [
        helper.make_node("ReduceSum", ["X", "axes"], ["s"], keepdims=1),
        helper.make_node("Cast", ["s"], ["Y"], to=TensorProto.FLOAT),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("X", TensorProto.DOUBLE, [None, 2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor("axes", TensorProto.INT64, [1], [1])],
    )
    return onnx_factory.save(graph, path)


def test_a_row_the_model_answers_infinity_for_is_its_own_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One such row ended the whole run: `aiaas explain: error: model ... answered non-finite
    # values`, exit 1, no --out file (the rows explained before it lost), and numpy's
    # "invalid value" warnings on stderr; `aiaas batch` of the same file scores the others.
    store = LocalStore(tmp_path / "store")
    argv = ["publish", str(overflowing(tmp_path / "o.onnx")), "--name", "o", "--features", "a,b"]
    assert cli(store, capsys, *argv)[0] == 0
    np.save(tmp_path / "train.npy", np.random.default_rng(0).normal(size=(20, 2)))
    assert cli(store, capsys, "baseline", "o", str(tmp_path / "train.npy"))[0] == 0
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n1e300,1e300\n3,4\n")
    why = tmp_path / "why.jsonl"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, err = cli(
            store, capsys, "explain", "o", "--file", str(tmp_path / "rows.csv"), "--out", str(why)
        )
    assert code == 1 and "1 row(s) could not be explained" in err, err
    assert not [w for w in caught if w.category is RuntimeWarning], caught
    lines = [json.loads(line) for line in why.read_text().splitlines()]
    assert [line.get("prediction") for line in lines] == [[3.0], None, [7.0]], lines
    assert "answered non-finite values" in lines[1]["error"], lines[1]
