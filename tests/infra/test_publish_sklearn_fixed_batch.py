"""scikit-learn models exported by skl2onnx the ways tutorials show, published and served with
the real CLI (sklzoo hunt).

`convert_sklearn(..., initial_types=[("float_input", FloatTensorType([1, 4]))])` fixes the
batch at 1, but skl2onnx declares every output's batch -1: the model was taken for one that
cannot run a row at a time, so predict refused a second row, `aiaas batch` refused the model
(with torch-only export advice) and publish said nothing. A multi-target regressor's --data
was told to republish with --labels, which is refused, and a MultiOutputClassifier's refusal
said what aiaas cannot serve but not what to do.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.multioutput import MultiOutputClassifier

from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.batch_support import run
from tests.functions.test_predict_events import body_of, http_event

SKLEARN_ADVICE = "initial_types=[('float_input', FloatTensorType([None, 4]))]"


def iris() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_iris(return_X_y=True)
    return x.astype(np.float32), y


def fixed_export(path: Path, batch: int) -> LogisticRegression:
    """LogisticRegression on iris, exported with its batch fixed (skl2onnx's ZipMap default)."""
    x, y = iris()
    model = LogisticRegression(max_iter=1000).fit(x, y)
    types = [("float_input", FloatTensorType([batch, 4]))]
    path.write_bytes(convert_sklearn(model, initial_types=types).SerializeToString())
    return model


def publish(store: LocalStore, path: Path, name: str, *extra: str) -> int:
    return main(["--store", store.uri, "publish", str(path), "--name", name, *extra])


def service(store: LocalStore, tmp_path: Path, name: str) -> PredictService:
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    return service_from_env({"AIAAS_MODEL": name}, pool)


def predict(served: PredictService, name: str, rows: np.ndarray) -> dict:
    body = json.dumps({"inputs": rows.tolist()})
    answer = served.handle(http_event("POST", f"/models/{name}/predict", body))
    return {"status": answer["statusCode"], **body_of(answer)}


def test_a_batch_fixed_at_one_by_skl2onnx_is_noted_and_runs_row_by_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    model = fixed_export(tmp_path / "fixed1.onnx", 1)
    assert publish(store, tmp_path / "fixed1.onnx", "fixed1") == 0
    said = capsys.readouterr().out
    assert "input 'float_input' [1, 4] fixes its batch at 1: predict and batch run" in said
    assert SKLEARN_ADVICE in said and "torch.onnx" not in said

    rows = iris()[0][::30]  # 5 rows over the 3 classes
    expected = [str(label) for label in model.predict(rows)]
    answer = predict(service(store, tmp_path, "fixed1"), "fixed1", rows)
    assert answer["status"] == 200, answer
    assert [p["label"] for p in answer["predictions"]] == expected
    np.testing.assert_allclose(
        answer["outputs"]["output_probability"], model.predict_proba(rows), atol=1e-4
    )

    lines = [",".join(f"float_input_{i}" for i in range(4))]
    lines += [",".join(str(float(v)) for v in row) for row in rows]
    store.put_bytes("batch/fixed1/input/rows.csv", ("\n".join(lines) + "\n").encode())
    summary = run(store, tmp_path, "batch/fixed1/input/rows.csv")
    assert summary["status"] == "succeeded", summary
    written = (tmp_path / "store" / summary["output"]).read_text()
    assert [r["pred_label"] for r in csv.DictReader(written.splitlines())] == expected


def test_a_batch_fixed_at_two_is_warned_of_with_skl2onnx_advice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    fixed_export(tmp_path / "fixed2.onnx", 2)
    assert publish(store, tmp_path / "fixed2.onnx", "fixed2") == 0
    said = capsys.readouterr().out
    assert "warning: input 'float_input' [2, 4] fixes its batch at 2: each predict request " in said
    assert SKLEARN_ADVICE in said

    answer = predict(service(store, tmp_path, "fixed2"), "fixed2", iris()[0][:3])
    assert answer["status"] == 422
    assert answer["error"].endswith(
        f"send 2 row(s) a request, or export again with one (skl2onnx's {SKLEARN_ADVICE}, "
        "or to_onnx(model, X[:1]), which leaves the batch dynamic)"
    )


def test_batch_and_publish_data_refuse_a_batch_fixed_at_two_with_skl2onnx_advice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`aiaas batch` (and publish --data, which reads its CSV as batch does) told a skl2onnx
    user to re-export with torch.onnx.export's dynamic axes, while predict and publish gave
    skl2onnx's own option (hunt_today4 #5)."""
    store = LocalStore(tmp_path / "store")
    fixed_export(tmp_path / "fixed2.onnx", 2)
    assert publish(store, tmp_path / "fixed2.onnx", "fixed2") == 0
    x, y = iris()
    np.save(tmp_path / "rows.npy", x[:10])
    argv = ["--store", store.uri, "batch", "fixed2", str(tmp_path / "rows.npy"), "--no-progress"]
    capsys.readouterr()
    assert main(argv) == 1
    error = capsys.readouterr().err
    assert "input 'float_input' has shape [2, 4]; batch scoring needs a dynamic first" in error
    assert SKLEARN_ADVICE in error and "torch.onnx" not in error

    data = tmp_path / "held.csv"
    lines = ["float_input_0,float_input_1,float_input_2,float_input_3,label"]
    lines += [",".join(map(str, [*row, t])) for row, t in zip(x[:10], y[:10], strict=True)]
    data.write_text("\n".join(lines) + "\n")
    assert publish(store, tmp_path / "fixed2.onnx", "fixed2", "--data", str(data)) == 1
    error = capsys.readouterr().err
    assert SKLEARN_ADVICE in error and "torch.onnx" not in error


def test_a_multi_target_regressor_given_data_is_not_told_to_add_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x, _ = iris()
    targets = np.stack([x @ [1, 2, 3, 4], x @ [4, 3, 2, 1]], axis=1)
    model = LinearRegression().fit(x, targets)
    path = tmp_path / "multi.onnx"
    path.write_bytes(
        convert_sklearn(
            model, initial_types=[("X", FloatTensorType([None, 4]))]
        ).SerializeToString()
    )
    data = tmp_path / "held.csv"
    lines = ["X_0,X_1,X_2,X_3,target_0,target_1"]
    lines += [",".join(map(str, [*row, *t])) for row, t in zip(x[:10], targets[:10], strict=True)]
    data.write_text("\n".join(lines) + "\n")
    store = LocalStore(tmp_path / "store")
    argv = ["--data", str(data), "--target", "target_0", "--features", "X_0,X_1,X_2,X_3"]
    assert publish(store, path, "multi", *argv) == 1
    error = capsys.readouterr().err
    assert "give as many targets a row as it answers values: columns y_0, y_1, ..." in error
    assert "--labels" not in error
    assert publish(store, path, "multi", "--labels", "a,b") == 1  # what it used to advise
    argv[3] = "target"  # both targets, target_0 and target_1: scored (compare's metrics)
    assert publish(store, path, "multi", *argv) == 0
    assert "(mae=" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["npz", "jsonl"])
def test_both_targets_given_as_labels_are_not_told_to_add_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """A row's label of both targets (an NPZ `y` [N, 2], a JSONL list: a torch regressor of two
    outputs' held-out rows) was "label [...] is not a number ...: for a classifier pass
    --labels, one per class" (hunt_journey2 3), then "cannot be scored yet"; it is scored, as
    `aiaas compare` scores several values a row (tests/infra/test_compare_several_values.py)."""
    x, _ = iris()
    targets = np.stack([x @ [1, 2, 3, 4], x @ [4, 3, 2, 1]], axis=1)
    path = tmp_path / "multi.onnx"
    model = convert_sklearn(
        LinearRegression().fit(x, targets), initial_types=[("X", FloatTensorType([None, 4]))]
    )
    path.write_bytes(model.SerializeToString())
    data = tmp_path / f"held.{kind}"
    if kind == "npz":
        np.savez(data, X=x[:10], y=targets[:10])
    else:
        rows = [
            {"X": r.tolist(), "y": t.tolist()} for r, t in zip(x[:10], targets[:10], strict=True)
        ]
        data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    store = LocalStore(tmp_path / "store")
    assert publish(store, path, "multi", "--data", str(data), "--target", "y") == 0
    out, error = capsys.readouterr()
    assert "--labels" not in error
    assert "(mae=" in out and "r2=1 on 10 rows" in out, out


SEVERAL_TARGETS = "give as many targets a row as it answers values: columns y_0, y_1, ..."


@pytest.mark.parametrize(
    "width, given, kind, said",
    [
        (1, 2, "npz", "the model answers 1 value a row (output 'variable') and 'y' holds 2 a "
         "row: give the one target this model predicts (a column, or an array of one value a "
         "row, named by --target)"),
        (1, 2, "jsonl", "the model answers 1 value a row (output 'variable') and 'y' holds 2 a "
         "row: give the one target this model predicts"),
        (3, 2, "npz", "the model answers 3 values a row (output 'variable') and 'y' holds 2 a "
         f"row, so they are not the same targets; {SEVERAL_TARGETS}"),
        (2, 3, "jsonl", "the model answers 2 values a row (output 'variable') and 'y' holds 3 a "
         f"row, so they are not the same targets; {SEVERAL_TARGETS}"),
        (2, 1, "npz", f"output 'variable' holds 2 values a row and the model names no classes "
         f"and has no output of one value a row, so nothing can be scored against the file's "
         f"labels: {SEVERAL_TARGETS}"),
    ],
)  # fmt: skip
def test_targets_of_another_width_than_the_model_s_are_said_by_both_widths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], width: int, given: int, kind: str,
    said: str,
) -> None:  # fmt: skip
    """A 1-output regressor given y [N, 2] (or JSONL `[a, b]` labels) was told "a regressor of
    several targets cannot be scored": the file held the 2 targets, the model 1 (review_rev8
    6). A 3-output model given 2 a row was told the same without either width."""
    x, _ = iris()
    targets = np.stack([x @ [1, 2, 3, 4], x @ [4, 3, 2, 1], x @ [1, 1, 1, 1]], axis=1)
    fitted = LinearRegression().fit(x, targets[:, 0] if width == 1 else targets[:, :width])
    path = tmp_path / "model.onnx"
    model = convert_sklearn(fitted, initial_types=[("X", FloatTensorType([None, 4]))])
    path.write_bytes(model.SerializeToString())
    labels = targets[:10, 0] if given == 1 else targets[:10, :given]
    data = tmp_path / f"held.{kind}"
    if kind == "npz":
        np.savez(data, X=x[:10], y=labels)
    else:
        rows = [{"X": r.tolist(), "y": t.tolist()} for r, t in zip(x[:10], labels, strict=True)]
        data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    store = LocalStore(tmp_path / "store")
    argv = ["--task", "regression", "--data", str(data), "--target", "y"]
    assert publish(store, path, "reg", *argv) == 1
    error = capsys.readouterr().err
    assert f"--data {data}: {said}" in error, error
    assert "--labels" not in error and len(error.splitlines()) == 1, error


def test_a_jsonl_label_of_one_value_in_a_list_is_that_value(tmp_path: Path) -> None:
    """`{"y": [0.59]}` (a one-output torch regressor's held-out rows written with .tolist()) was
    "label [0.59] is not a number ...: for a classifier pass --labels", where the same labels
    in an NPZ's y [N, 1] are scored (review_rev8 6)."""
    x, _ = iris()
    target = x @ [1, 2, 3, 4]
    path = tmp_path / "one.onnx"
    model = convert_sklearn(
        LinearRegression().fit(x, target), initial_types=[("X", FloatTensorType([None, 4]))]
    )
    path.write_bytes(model.SerializeToString())
    data = tmp_path / "held.jsonl"
    rows = [{"X": r.tolist(), "y": [float(t)]} for r, t in zip(x[:20], target[:20], strict=True)]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    store = LocalStore(tmp_path / "store")
    assert publish(store, path, "one", "--data", str(data), "--target", "y") == 0
    held_out = Registry(store).manifest("one", "1").metrics["held_out"]
    assert held_out["r2"] == pytest.approx(1.0, abs=1e-4)


@pytest.mark.filterwarnings("ignore:Option zipmap is ignored")
def test_a_multi_output_classifier_is_told_what_to_publish_instead(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x, y = iris()
    model = MultiOutputClassifier(LogisticRegression(max_iter=1000))
    model.fit(x, np.stack([y, y % 2], axis=1))
    path = tmp_path / "moc.onnx"
    onnx_model = convert_sklearn(model, initial_types=[("X", FloatTensorType([None, 4]))])
    path.write_bytes(onnx_model.SerializeToString())
    store = LocalStore(tmp_path / "store")
    assert publish(store, path, "moc") == 1
    assert "export each target's estimator (model.estimators_[i]) as its own model" in (
        capsys.readouterr().err
    )
    first = tmp_path / "first.onnx"  # the advice, followed
    first.write_bytes(
        convert_sklearn(
            model.estimators_[0], initial_types=[("X", FloatTensorType([None, 4]))]
        ).SerializeToString()
    )
    assert publish(store, first, "moc-0") == 0
