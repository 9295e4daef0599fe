"""Files of a model with a bool mask input, as users write them. A bool input's CSV cells as
pandas writes them: `df.to_csv()` of a frame with a bool column writes True/False, which `aiaas
batch` refused on every row ("column 'mask_0' is not a number: 'True'") though 1/0 scored, and
`publish --data` read neither. True/False in any case and 1/0 are read; anything else is the
row's error saying what a bool column takes. And `publish --data` of such a model whose
embedding output comes before its score is scored on the score."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.publishing import published_cli

MASKED_INPUTS: onnx_factory.Tensors = {
    "x": (TensorProto.FLOAT, ["N", 2]),
    "mask": (TensorProto.BOOL, ["N", 2]),
}


def masked(path: Path) -> Path:
    """y [N, 2] = x * mask, mask bool [N, 2]."""
    nodes = [
        helper.make_node("Cast", ["mask"], ["on"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["x", "on"], ["y"]),
    ]
    outputs: onnx_factory.Tensors = {"y": (TensorProto.FLOAT, ["N", 2])}
    return onnx_factory.over_rows(path, nodes, MASKED_INPUTS, outputs)


def masked_sum(path: Path, *, embedding_first: bool = False) -> Path:
    """y [N, 1] = sum(x * mask), mask bool [N, 2]: one value a row, for held-out metrics; with
    `embedding_first`, the masked x [N, 2] is output `kept` before it."""
    nodes = [
        helper.make_node("Cast", ["mask"], ["on"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["x", "on"], ["kept"]),
        helper.make_node("ReduceSum", ["kept", "axes"], ["y"], keepdims=1),
    ]
    outputs: onnx_factory.Tensors = {"y": (TensorProto.FLOAT, ["N", 1])}
    if embedding_first:
        outputs = {"kept": (TensorProto.FLOAT, ["N", 2]), **outputs}
    axes = [helper.make_tensor("axes", TensorProto.INT64, [1], [1])]
    return onnx_factory.over_rows(path, nodes, MASKED_INPUTS, outputs, axes)


def test_true_false_cells_feed_a_bool_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = masked(tmp_path / "m.onnx")
    store = published_cli(tmp_path, model)
    cells = [("True", "False"), ("false", "TRUE"), ("1", "0"), ("yes", "no")]
    rows = tmp_path / "rows.csv"
    rows.write_text("x_0,x_1,mask_0,mask_1\n" + "".join(f"1.5,2.5,{a},{b}\n" for a, b in cells))
    assert main(["--store", store.uri, "batch", "m", str(rows)]) == 0
    capsys.readouterr()
    out = list(csv.DictReader(store.get_bytes("batch/m/output/rows.csv").decode().splitlines()))
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    masks = np.array([[True, False], [False, True], [True, False]])
    x = np.tile(np.array([[1.5, 2.5]], np.float32), (3, 1))
    (expected,) = session.run(None, {"x": x, "mask": masks})
    assert [[float(r["pred_y_0"]), float(r["pred_y_1"])] for r in out] == expected.tolist()
    errors = store.get_bytes("batch/m/output/rows.csv.errors.jsonl").decode().splitlines()
    assert [json.loads(line) for line in errors] == [
        {
            "line": 5,
            "error": "column 'mask_0' is not a number: 'yes' (input 'mask' is bool: write "
            "true/false or 1/0)",
        }
    ]


def test_a_jsonl_bool_input_of_numbers_is_told_true_false(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = masked(tmp_path / "m.onnx")
    store = published_cli(tmp_path, model)
    rows = tmp_path / "rows.jsonl"
    lines = [{"x": [1, 2], "mask": [True, False]}, {"x": [1, 2], "mask": [1, 0]}]
    rows.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert main(["--store", store.uri, "batch", "m", str(rows)]) == 0
    capsys.readouterr()
    errors = store.get_bytes("batch/m/output/rows.jsonl.errors.jsonl").decode().splitlines()
    # It said "must hold bool numbers; got int64".
    assert [json.loads(line)["error"] for line in errors] == [
        "input 'mask' must hold true/false; got int64"
    ]


def test_publish_data_reads_a_bool_input_from_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Neither True/False ("must be a number (bool)") nor 1/0 ("expects bool; got float64") was
    # read, so no CSV gave a bool-input model held-out metrics.
    model = masked_sum(tmp_path / "m.onnx")
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32)
    mask = np.array([[True, False], [False, True], [True, True]])
    (y,) = session.run(None, {"x": x, "mask": mask})
    truth = y[:, 0] + 0.5  # off by 0.5: an RMSE of 0.5 to check
    for spelled in (("True", "False"), ("1", "0")):
        data = tmp_path / "held.csv"
        data.write_text(
            "x_0,x_1,mask_0,mask_1,target\n"
            + "".join(
                f"{a},{b},{spelled[not m0]},{spelled[not m1]},{t}\n"
                for (a, b), (m0, m1), t in zip(
                    x.tolist(), mask.tolist(), truth.tolist(), strict=True
                )
            )
        )
        store = LocalStore(tmp_path / f"store-{spelled[0]}")
        argv = ["--store", store.uri, "publish", str(model), "--name", "m", "--data", str(data)]
        assert main(argv) == 0, capsys.readouterr().err
        manifest = json.loads(store.get_bytes("models/m/versions/1/manifest.json"))
        held = manifest["metrics"]["held_out"]
        assert held["rmse"] == pytest.approx(0.5, abs=1e-6), held


def test_publish_data_scores_the_output_of_one_value_a_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An embedding [N, 2] first, the score [N, 1] second (a two-tower model's order): publish
    # scored output 0 and refused the model ("holds 2 values a row ... --labels").
    model = masked_sum(tmp_path / "m.onnx", embedding_first=True)
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32)
    mask = np.array([[True, False], [False, True], [True, True]])
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    y = session.run(["y"], {"x": x, "mask": mask})[0][:, 0]
    data = tmp_path / "held.npz"
    np.savez(data, x=x, mask=mask, target=y + 0.5)
    store = LocalStore(tmp_path / "store")
    argv = ["--store", store.uri, "publish", str(model), "--name", "m", "--data", str(data)]
    assert main(argv) == 0, capsys.readouterr().err
    held = json.loads(store.get_bytes("models/m/versions/1/manifest.json"))["metrics"]["held_out"]
    assert (held["output"], held["rmse"]) == ("y", pytest.approx(0.5, abs=1e-6))
    card = store.get_bytes("models/m/versions/1/card/card.md").decode()
    assert "(true values in `target`, against output `y`):" in card


def test_explain_file_reads_a_bool_input_from_csv_and_jsonl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `aiaas baseline` read the mask's True/False cells, then `aiaas explain --file` of the
    # same file (or of JSONL rows holding true/false) explained no row: each was "input 'mask'
    # expects bool; got float64", as the file's rows reached the explainer as floats.
    model = masked_sum(tmp_path / "m.onnx")
    store = published_cli(tmp_path, model)
    rows = tmp_path / "rows.csv"
    cells = [(1.5, 2.5, "True", "False"), (3.0, -1.0, "False", "True"), (2.0, 4.0, "1", "1")]
    rows.write_text(
        "x_0,x_1,mask_0,mask_1\n" + "".join(",".join(map(str, c)) + "\n" for c in cells)
    )
    assert main(["--store", store.uri, "baseline", "m:1", str(rows)]) == 0
    lines = tmp_path / "rows.jsonl"
    lines.write_text(
        '{"x": [1.5, 2.5], "mask": [true, false]}\n{"x": [3, -1], "mask": [false, true]}\n'
    )
    for data, answers in ((rows, [1.5, -1.0, 6.0]), (lines, [1.5, -1.0])):
        why = tmp_path / f"{data.name}.why.jsonl"
        argv = ["--store", store.uri, "explain", "m:1", "--file", str(data), "--out", str(why)]
        assert main([*argv, "--no-progress"]) == 0, capsys.readouterr().err
        explained = [json.loads(line) for line in why.read_text().splitlines()]
        assert [e["prediction"] for e in explained] == [[a] for a in answers], explained
        for e in explained:  # the attributions add up to the prediction less the base value
            total = sum(row[0] for row in e["attributions"]) + e["base_value"][0]
            assert total == pytest.approx(e["prediction"][0], abs=1e-5)
