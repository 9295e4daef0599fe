"""Batch scoring at numpy's edges: a row is scored exactly or reported, never scored wrong.

Text formats read numbers as float64, which holds every integer only below 2**53: past it a
cell may read as its neighbour (9007199254740993 as ...992) and 2**64 - 1 as 2**64, which a
cast to uint64 wraps to 0. Such rows are reported with what to do; NPY keeps them exact. A
model whose output is one value for the whole request has nothing to write beside each row.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.batch_support import read_csv, run

BIG = [2**53 + 1, 2**64 - 1]


def _uint64_store(tmp_path: Path) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    path = onnx_factory.identity(tmp_path / "u.onnx", elem=TensorProto.UINT64, shape=["N", 2])
    Registry(store).publish(onnx_factory.manifest_for(path, "ids", "1"), path)
    return store


def _errors(store: LocalStore, key: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in store.get_bytes(key).decode().splitlines()]


def test_text_rows_with_integers_past_2_53_are_reported_and_the_rest_scored(tmp_path):
    store = _uint64_store(tmp_path)
    lines = ["x_0,x_1", f"1,{BIG[0]}", "4,5", f"{BIG[1]},2", f"{2**52},3"]
    store.put_bytes("batch/ids/input/i.csv", "\n".join(lines).encode())
    summary = run(store, tmp_path, "batch/ids/input/i.csv")
    assert (summary["scored_rows"], summary["failed_rows"]) == (2, 2)
    assert read_csv(store, "batch/ids/output/i.csv") == [
        {"x_0": "4", "x_1": "5", "pred_y_0": "4", "pred_y_1": "5"},
        {"x_0": str(2**52), "x_1": "3", "pred_y_0": str(2**52), "pred_y_1": "3"},
    ]
    errors = _errors(store, "batch/ids/output/i.csv.errors.jsonl")
    assert [e["line"] for e in errors] == [2, 4]
    assert all("only up to 2**53" in str(e["error"]) and "NPY" in str(e["error"]) for e in errors)
    assert "is 18446744073709551615, a number read as a float" in str(errors[1]["error"])


def test_a_csv_integer_past_2_53_is_quoted_as_written_on_every_route(tmp_path):
    """The reason quoted the float the cell read as (9007199254740993 as 9007199254740992,
    int64's min as -9.2233720368547758e+18): a number the file does not hold. The same words
    whichever route reads the chunk (plain numbers, among odd lines, with a text column)."""
    store = LocalStore(tmp_path / "store")
    path = onnx_factory.identity(tmp_path / "i.onnx", elem=TensorProto.INT64, shape=["N", 2])
    Registry(store).publish(onnx_factory.manifest_for(path, "ids", "1"), path)
    cells = [f"{2**53 + 1},1", f"-{2**63},1", f"2, {2**64 + 1} ", "3,4"]
    files = {
        "plain.csv": ["x_0,x_1", *cells],
        "mixed.csv": ["x_0,x_1", *cells, *(["5,6"] * 12), "7,abc"],
        "text.csv": ["id,x_0,x_1", *(f"r,{line}" for line in cells), 'r,"8",9'],
    }
    for name, lines in files.items():
        store.put_bytes(f"batch/ids/input/{name}", "\n".join(lines).encode())
        run(store, tmp_path, f"batch/ids/input/{name}")
        errors = _errors(store, f"batch/ids/output/{name}.errors.jsonl")
        assert [str(e["error"]).split(", a number")[0] for e in errors[:3]] == [
            f"input 'x' value 0 is {2**53 + 1}",
            f"input 'x' value 0 is -{2**63}",
            f"input 'x' value 1 is {2**64 + 1}; expected an integer in [-{2**63}, {2**63 - 1}]",
        ], name


def test_jsonl_integers_past_2_53_are_read_exactly(tmp_path):
    """JSON writes integers as digits, which are read exactly (a hashed id, uint64's max):
    they were refused as past 2**53, and a float row in the chunk (6.0) made every row float."""
    store = _uint64_store(tmp_path)
    rows = ([1, BIG[0]], [4.0, 5], [BIG[1], 0], [1.5, 2], [2.0**60, 1])
    body = "\n".join(json.dumps({"x": row}) for row in rows)
    store.put_bytes("batch/ids/input/i.jsonl", body.encode())
    summary = run(store, tmp_path, "batch/ids/input/i.jsonl")
    assert (summary["scored_rows"], summary["failed_rows"]) == (3, 2)
    written = store.get_bytes("batch/ids/output/i.jsonl").decode().splitlines()
    assert [json.loads(line)["pred_y"] for line in written] == [[1, BIG[0]], [4, 5], [BIG[1], 0]]
    errors = _errors(store, "batch/ids/output/i.jsonl.errors.jsonl")
    assert [e["line"] for e in errors] == [4, 5]
    assert "is 1.5; expected an integer" in str(errors[0]["error"])
    assert "a number read as a float" in str(errors[1]["error"])


def test_npy_keeps_uint64_extremes_exact(tmp_path):
    store = _uint64_store(tmp_path)
    x = np.array([[1, BIG[0]], [BIG[1], 2**63 + 1]], dtype=np.uint64)
    buffer = io.BytesIO()
    np.save(buffer, x)
    store.put_bytes("batch/ids/input/x.npy", buffer.getvalue())
    summary = run(store, tmp_path, "batch/ids/input/x.npy")
    assert (summary["scored_rows"], summary["failed_rows"]) == (2, 0), summary
    with np.load(io.BytesIO(store.get_bytes(summary["output"]))) as out:
        np.testing.assert_array_equal(out["y"], x)


def test_a_model_with_a_rank_0_output_fails_the_run_with_why(tmp_path):
    store = LocalStore(tmp_path / "store")
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0)],
        "sum",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("total", TensorProto.FLOAT, [])],
    )
    path = onnx_factory.save(graph, tmp_path / "sum.onnx")
    Registry(store).publish(onnx_factory.manifest_for(path, "sum", "1"), path)
    store.put_bytes("batch/sum/input/a.csv", b"x_0,x_1\n1,2\n")
    summary = run(store, tmp_path, "batch/sum/input/a.csv")
    assert summary["status"] == "failed"
    assert "output 'total' has shape []" in summary["error"]


def test_a_narrow_integer_past_2_53_is_told_its_range_not_to_use_npy(tmp_path):
    store = LocalStore(tmp_path / "store")
    path = onnx_factory.identity(tmp_path / "i.onnx", elem=TensorProto.INT32, shape=["N", 1])
    Registry(store).publish(onnx_factory.manifest_for(path, "small", "1"), path)
    store.put_bytes("batch/small/input/i.csv", b"x\n1e16\n7\n")
    summary = run(store, tmp_path, "batch/small/input/i.csv")
    assert (summary["scored_rows"], summary["failed_rows"]) == (1, 1)
    (error,) = _errors(store, "batch/small/output/i.csv.errors.jsonl")
    assert (
        error["error"] == "input 'x' is 1e16; expected an integer in [-2147483648, 2147483647]"
    )  # as written


def test_refused_rows_are_parsed_again_only_where_a_cell_is_quoted(tmp_path: Path) -> None:
    """A refused row's cells were parsed again from the file for every refused row, to quote a
    cell past 2^53 as written: a file of many gaps paid a csv parse a row for nothing."""
    from functions.runtime.batch.scoring import coerce_rows

    path = onnx_factory.identity(tmp_path / "ident.onnx", TensorProto.INT64)
    manifest = onnx_factory.manifest_for(path, "ident", "1")
    raw = {"x": np.array([[1.0, float("nan"), 3.0], [2.0**60 + 1, 2.0, 3.0], [4.0, 5.0, 6.0]])}
    asked: list[int] = []

    def written(index: int) -> dict[str, list[str]]:
        asked.append(index)
        return {"x": ["1152921504606846977", "2", "3"]}

    _, good, errors = coerce_rows(manifest, raw, np.arange(3), written)
    assert good.tolist() == [False, False, True] and asked == [1]  # was [0, 1]
    assert "1152921504606846977" in errors[1].reason, errors
