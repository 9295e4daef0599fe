"""Corners of a OneHotEncoder's missing category (leftovers2 1).

- A CSV cell with blanks around a gap's spelling (`" NA"`, `"NA "`, `"  "`, what `a, NA` writes)
  is a text to pandas' read_csv, so to `predict_proba` on the frame it reads: batch read it as
  the gap (the spelling stripped), so a category the encoder learnt as `" NA"` was scored as
  the missing one, with success.
- skl2onnx writes a category "None" for the text "None" (a real value: no garage, no plan) and
  for a Python None alike. An encoder that learnt "None" and no NaN took "None" as its missing
  category: a `null` and an empty CSV cell were scored as the text "None", where
  `predict_proba` finds them unknown (zeros with handle_unknown='ignore', a refusal with
  'error'). "None" is now that text only: a null is refused, an empty cell is "".
- Two encoders reading two columns of one string input: each column's gap is "nan", the only
  missing spelling left, as `predict_proba` encodes NaN in either.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skl2onnx import to_onnx
from skl2onnx.common.data_types import StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.functions.test_predict_events import body_of, http_event


def _quiet(argv: list[str]) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(argv)


def _publish(root: Path, pipeline: Pipeline, frame: pd.DataFrame, name: str) -> LocalStore:
    model = root / f"{name}.onnx"
    model.write_bytes(to_onnx(pipeline, frame[:1]).SerializeToString())
    store = LocalStore(root / "store")
    assert _quiet(["--store", store.uri, "publish", str(model), "--name", name]) == 0
    return store


def _batch_labels(store: LocalStore, name: str, path: Path) -> list[str]:
    assert _quiet(["--store", store.uri, "batch", name, str(path)]) == 0
    out = store.get_bytes(f"batch/{name}/output/{path.name}").decode()
    return [row["pred_label"] for row in csv.DictReader(io.StringIO(out))]


def _frame(region: np.ndarray) -> pd.DataFrame:
    """`region` and a `size` of noise (two columns: pandas skips a CSV line of blanks alone)."""
    size = np.random.default_rng(2).normal(0, 1, len(region)).astype(np.float32)
    return pd.DataFrame({"size": size, "region": pd.Series(region, dtype=object)})


def _fit(region: np.ndarray, named: dict[object, str], hu: str = "ignore") -> Pipeline:
    """A classifier whose label is each category's name in `named` ('gap' for NaN)."""
    target = np.array([named.get(r, "other") if r is not np.nan else "gap" for r in region])
    encoder = ColumnTransformer(
        [("num", StandardScaler(), ["size"]), ("cat", OneHotEncoder(handle_unknown=hu), ["region"])]
    )
    return Pipeline([("prep", encoder), ("clf", LogisticRegression(max_iter=2000))]).fit(
        _frame(region), target
    )


def test_a_gap_spelled_with_blanks_around_is_the_text_pandas_reads(tmp_path: Path) -> None:
    """`a, NA` in the training file: pandas read the category " NA" (and " north"), beside
    empty cells it read as NaN. Batch scored the cell " NA" as the gap: label 'gap', where
    `predict_proba` on the same file says 'spaced'."""
    rng = np.random.default_rng(0)
    region = rng.choice(np.array([" north", " NA", "GAP"], dtype=object), 240)
    region[region == "GAP"] = np.nan
    pipeline = _fit(region, {" NA": "spaced", " north": "north"})
    store = _publish(tmp_path, pipeline, _frame(region), "spaced")
    spec = Registry(store).manifest("spaced", "1").inputs[1]
    assert (spec.missing, spec.na_categories) == ("nan", ())
    path = tmp_path / "rows.csv"
    path.write_text('size,region\n0, NA\n0,NA \n0," NA"\n0,  \n0, north\n0,\n')
    read = pd.read_csv(path)  # as a user scores it in scikit-learn
    assert read["region"].tolist()[:5] == [" NA", "NA ", " NA", "  ", " north"]
    want = list(pipeline.predict(read))
    assert want[0] == "spaced" and want[-1] == "gap", want
    assert _batch_labels(store, "spaced", path) == want


@pytest.mark.parametrize("hu", ["ignore", "error"])
def test_an_encoder_that_learnt_the_text_none_keeps_it_a_category(tmp_path: Path, hu: str) -> None:
    """No gaps in training, the text "None" a category (a frame read keep_default_na=False)."""
    region = np.array(["None", "north", "south"] * 40, dtype=object)
    pipeline = _fit(region, {"None": "none", "north": "north", "south": "south"}, hu)
    store = _publish(tmp_path, pipeline, _frame(region), "plans")
    spec = Registry(store).manifest("plans", "1").inputs[1]
    assert spec.missing is None  # was "None": a null was sent as the text
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "plans"}, pool)
    sent = {"instances": [{"size": 0, "region": "None"}, {"size": 0, "region": None}]}
    response = service.handle(http_event("POST", "/models/plans/predict", json.dumps(sent)))
    assert response["statusCode"] == 422, response["body"]  # was 200, both labelled 'none'
    assert "region is null, which a string input cannot" in body_of(response)["error"]
    sent = {"instances": [{"size": 0, "region": "None"}]}
    response = service.handle(http_event("POST", "/models/plans/predict", json.dumps(sent)))
    assert [p["label"] for p in body_of(response)["predictions"]] == ["none"]
    path = tmp_path / "rows.csv"
    path.write_text("size,region\n0,north\n0,\n")  # the gap: NaN to pandas, unknown here
    labels = _batch_labels(store, "plans", path)
    if hu == "ignore":  # the all-zero row, as predict_proba scores NaN
        assert labels == list(pipeline.predict(pd.read_csv(path))), labels
    else:  # predict_proba refuses NaN; batch refuses the row rather than answer 'none'
        assert labels == ["north"], labels
        (error,) = store.get_bytes("batch/plans/output/rows.csv.errors.jsonl").splitlines()
        assert json.loads(error)["line"] == 3 and "'' is not a category" in error.decode()


def _publish_column_pair(
    tmp_path: Path, grid: np.ndarray, target: np.ndarray, name: str
) -> tuple[Pipeline, LocalStore]:
    """One [N, 2] string input, one OneHotEncoder a column, fit on `grid`, exported with
    skl2onnx's defaults and published as `name`."""
    encoders = ColumnTransformer(
        [
            ("c0", OneHotEncoder(handle_unknown="ignore"), [0]),
            ("c1", OneHotEncoder(handle_unknown="ignore"), [1]),
        ]
    )
    pipeline = Pipeline([("prep", encoders), ("clf", LogisticRegression(max_iter=2000))])
    pipeline.fit(grid, target)
    model = tmp_path / f"{name}.onnx"
    onx = to_onnx(pipeline, initial_types=[("x", StringTensorType([None, 2]))])
    model.write_bytes(onx.SerializeToString())
    store = LocalStore(tmp_path / "store")
    assert _quiet(["--store", store.uri, "publish", str(model), "--name", name]) == 0
    return pipeline, store


def test_two_encoders_on_one_string_input_read_a_gap_in_either_column(tmp_path: Path) -> None:
    """One [N, 2] string input, one encoder a column (integer columns of a numpy array):
    a null in either column is that column's "nan", as predict_proba encodes NaN there."""
    rng = np.random.default_rng(1)
    grid = rng.choice(np.array(["a", "b", "GAP"], dtype=object), (300, 2))
    grid[grid == "GAP"] = np.nan
    target = np.where(pd.isna(grid[:, 0]), "gap0", np.where(pd.isna(grid[:, 1]), "gap1", "both"))
    pipeline, store = _publish_column_pair(tmp_path, grid, target, "pair")
    assert Registry(store).manifest("pair", "1").inputs[0].missing == "nan"
    rows = np.array([["a", None], [None, "b"], ["b", "a"]], dtype=object)
    want = list(pipeline.predict(np.where(pd.isna(rows), np.nan, rows)))
    assert want == ["gap1", "gap0", "both"]
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "pair"}, pool)
    sent = json.dumps({"instances": rows.tolist()})
    response = service.handle(http_event("POST", "/models/pair/predict", sent))
    assert response["statusCode"] == 200, response["body"]
    assert [p["label"] for p in body_of(response)["predictions"]] == want


def test_encoders_of_one_input_that_learnt_a_gap_spelling_differently_leave_it_without(
    tmp_path: Path,
) -> None:
    """Column 0 learnt the text "n/a" beside its gaps, column 1 only gaps: one input's
    na_categories cannot say both (a "n/a" cell in column 1 is NaN to pandas, "n/a" in
    column 0), so the input takes no null rather than column 0's list for both."""
    rng = np.random.default_rng(3)
    grid = rng.choice(np.array(["a", "n/a", "GAP"], dtype=object), (300, 2))
    grid[grid == "GAP"] = np.nan
    grid[grid[:, 1] == "n/a", 1] = "a"
    target = np.where(pd.isna(grid[:, 0]), "gap0", "other")
    one_hot = OneHotEncoder(handle_unknown="ignore")
    encoders = ColumnTransformer([("c0", one_hot, [0]), ("c1", OneHotEncoder(), [1])])
    pipeline = Pipeline([("prep", encoders), ("clf", LogisticRegression(max_iter=2000))])
    model = tmp_path / "pair.onnx"
    onx = to_onnx(pipeline.fit(grid, target), initial_types=[("x", StringTensorType([None, 2]))])
    model.write_bytes(onx.SerializeToString())
    store = LocalStore(tmp_path / "store")
    assert _quiet(["--store", store.uri, "publish", str(model), "--name", "pair"]) == 0
    spec = Registry(store).manifest("pair", "1").inputs[0]
    assert (spec.missing, spec.na_categories) == (None, ())


def test_a_captured_text_spelled_as_a_gap_is_exported_as_served(tmp_path: Path) -> None:
    """(d) A request's text "NA", "null" or "" to a model whose encoder learnt a missing
    category was served as that text (an unknown category: zeros); `capture export` to CSV
    wrote it as is, and batch (as pandas) read the cell back as the gap: the missing
    category's answer, another label than the one served, with success."""
    from tests.infra.test_capture_export_cells import capture

    rng = np.random.default_rng(4)
    region = rng.choice(np.array(["north", "south", "GAP"], dtype=object), 240)
    region[region == "GAP"] = np.nan
    pipeline = _fit(region, {"north": "north", "south": "south"})
    store = _publish(tmp_path, pipeline, _frame(region), "shops")
    sent = [{"size": 0.0, "region": r} for r in ("north", "NA", "null", "", None)]
    answers = capture(Registry(store), tmp_path, "shops", [{"instances": sent}])
    served = [p["label"] for p in answers[0]["predictions"]]
    assert "gap" not in served[1:4] and served[4] == "gap", served  # texts: all-zero rows
    out, err = tmp_path / "captured.csv", io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        assert main(["--store", store.uri, "capture", "export", "shops", "--out", str(out)]) == 0
    # A CSV cannot tell the text "NA" from a gap: said, with the way to keep them (was silent)
    assert "warning: 3 captured texts are spelled as a missing value" in err.getvalue()
    assert "region (3)" in err.getvalue() and "--out FILE.jsonl" in err.getvalue()
    read_back = _batch_labels(store, "shops", out)
    assert read_back[1:] == ["gap"] * 4, read_back  # as pandas reads the file
    lines = tmp_path / "captured.jsonl"
    assert _quiet(["--store", store.uri, "capture", "export", "shops", "--out", str(lines)]) == 0
    kept = _batch_labels_jsonl(store, "shops", lines)
    assert kept == served  # texts kept as texts, the null a gap


def test_a_captured_gap_spelling_the_encoder_learnt_is_no_warning(tmp_path: Path) -> None:
    """An encoder that learnt the text "n/a" beside its gaps (`na_categories`): a request's
    "n/a" was served as that category, and a CSV cell "n/a" reads back so too (batch keeps the
    learnt spelling), yet the export counted it among the texts read back as the gap, saying it
    was "a category the model never saw". Only "NA" is such a text here."""
    from tests.infra.test_capture_export_cells import capture

    rng = np.random.default_rng(5)
    region = rng.choice(np.array(["north", "n/a", "GAP"], dtype=object), 240)
    region[region == "GAP"] = np.nan
    pipeline = _fit(region, {"north": "north", "n/a": "na"})
    store = _publish(tmp_path, pipeline, _frame(region), "shops")
    assert Registry(store).manifest("shops", "1").inputs[1].na_categories == ("n/a",)
    sent = [{"size": 0.0, "region": r} for r in ("north", "n/a", "NA")]
    answers = capture(Registry(store), tmp_path, "shops", [{"instances": sent}])
    served = [p["label"] for p in answers[0]["predictions"]]
    assert served[:2] == ["north", "na"], served
    out, err = tmp_path / "captured.csv", io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        assert main(["--store", store.uri, "capture", "export", "shops", "--out", str(out)]) == 0
    assert "warning: 1 captured text is spelled as a missing value" in err.getvalue(), err
    assert "region (1)" in err.getvalue()  # was 2: the "n/a" counted too
    assert _batch_labels(store, "shops", out)[:2] == served[:2]  # "n/a" read back as served


def _batch_labels_jsonl(store: LocalStore, name: str, path: Path) -> list[str]:
    assert _quiet(["--store", store.uri, "batch", name, str(path)]) == 0
    out = store.get_bytes(f"batch/{name}/output/{path.name}").decode().splitlines()
    return [json.loads(line)["pred_label"] for line in out]


def test_a_frame_fit_with_python_none_is_told_to_send_none(tmp_path: Path) -> None:
    """A pandas frame holding Python None for its gaps (built from records, read from a
    database): scikit-learn keeps None a category of its own ("None" to skl2onnx) and encodes a
    None so at predict. A null is refused (the text "None" is spelt alike), and the 422 said to
    send "", a category the model never saw (zeros, not predict_proba's answer for None): it now
    says to send "None", in records, OIP and a batch JSONL line, and `aiaas show` says so."""
    rng = np.random.default_rng(4)
    region = rng.choice(np.array(["north", "south", "GAP"], dtype=object), 240)
    region[region == "GAP"] = None
    pipeline = _fit(region, {None: "gap", "north": "north", "south": "south"})
    store = _publish(tmp_path, pipeline, _frame(region), "plans")
    spec = Registry(store).manifest("plans", "1").inputs[1]
    assert (spec.missing, spec.none_category) == (None, True)
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        assert main(["--store", store.uri, "show", "plans:1"]) == 0
    assert "null refused: send 'None'" in shown.getvalue()
    want = pipeline.predict_proba(pd.DataFrame({"size": [0.0], "region": [None]}))[0]
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "plans"}, pool)
    told = 'send "None" for a value missing as Python None'
    sent = {"instances": [{"size": 0, "region": None}]}
    response = service.handle(http_event("POST", "/models/plans/predict", json.dumps(sent)))
    assert response["statusCode"] == 422 and told in body_of(response)["error"], response
    tensors = [
        {"name": "size", "shape": [1, 1], "datatype": "FP32", "data": [0]},
        {"name": "region", "shape": [1, 1], "datatype": "BYTES", "data": [None]},
    ]
    response = service.handle(
        http_event("POST", "/v2/models/plans/infer", json.dumps({"inputs": tensors}))
    )
    assert response["statusCode"] == 422 and told in body_of(response)["error"], response
    sent = {"instances": [{"size": 0, "region": "None"}]}  # what the 422 says to send
    response = service.handle(http_event("POST", "/models/plans/predict", json.dumps(sent)))
    (answer,) = body_of(response)["outputs"]["output_probability"]
    assert np.allclose(answer, want, atol=1e-4), (answer, want)
    path = tmp_path / "rows.jsonl"
    path.write_text('{"size": 0, "region": "north"}\n{"size": 0, "region": null}\n')
    assert _quiet(["--store", store.uri, "batch", "plans", str(path)]) == 0
    (line,) = store.get_bytes("batch/plans/output/rows.jsonl").splitlines()
    assert json.loads(line)["pred_label"] == "north"
    (error,) = store.get_bytes("batch/plans/output/rows.jsonl.errors.jsonl").splitlines()
    assert told in json.loads(error)["error"], error
    # A CSV cell "None" is that category, on purpose (docs/registry.md), though pandas'
    # read_csv reads it as NaN: NaN is a value this encoder never saw, None is what it was fit on.
    table = tmp_path / "rows.csv"
    table.write_text("size,region\n0,None\n0,north\n")
    assert _batch_labels(store, "plans", table) == ["gap", "north"]


def test_columns_of_one_input_fit_one_on_none_one_on_nan_take_no_null(tmp_path: Path) -> None:
    """Column 0 of a numpy object array fit with Python None for its gaps ("None" to skl2onnx),
    column 1 with NaN ("nan"): the input took null as "nan" in both, so a null in column 0 was
    an unknown category (label 'other'), where predict_proba encodes that None as the category
    it learnt ('none0'), with success. No one category says both: the null is refused, saying
    to send "None", which gets predict_proba's answer."""
    rng = np.random.default_rng(6)
    grid = rng.choice(np.array(["a", "b", "GAP"], dtype=object), (300, 2))
    nones = grid[:, 0] == "GAP"
    grid[nones, 0] = None
    grid[grid[:, 1] == "GAP", 1] = np.nan
    target = np.where(nones, "none0", np.where(pd.isna(grid[:, 1]), "gap1", "other"))
    pipeline, store = _publish_column_pair(tmp_path, grid, target, "mix")
    spec = Registry(store).manifest("mix", "1").inputs[0]
    assert (spec.missing, spec.none_category) == (None, True)  # was "nan", and no word
    assert list(pipeline.predict(np.array([[None, "a"]], dtype=object))) == ["none0"]
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "mix"}, pool)
    sent = json.dumps({"instances": [[None, "a"]]})
    response = service.handle(http_event("POST", "/models/mix/predict", sent))
    assert response["statusCode"] == 422, response["body"]  # was 200, label 'other'
    assert 'send "None"' in body_of(response)["error"]
    sent = json.dumps({"instances": [["None", "a"]]})
    response = service.handle(http_event("POST", "/models/mix/predict", sent))
    assert [p["label"] for p in body_of(response)["predictions"]] == ["none0"]


def test_a_null_refused_in_a_column_that_saw_no_gap_says_it_was_the_null(tmp_path: Path) -> None:
    """Column 0 learnt gaps ("nan"), column 1 none and refuses unknowns: a null in column 1 is
    sent as "nan" (NaN, as predict_proba reads it, refuses too), and the 422 named 'nan', a
    value the caller never sent; it now says that is their null."""
    rng = np.random.default_rng(7)
    grid = rng.choice(np.array(["a", "b", "GAP"], dtype=object), (300, 2))
    grid[grid[:, 1] == "GAP", 1] = "a"
    grid[grid == "GAP"] = np.nan
    target = np.where(pd.isna(grid[:, 0]), "gap0", "other")
    encoders = ColumnTransformer(
        [("c0", OneHotEncoder(handle_unknown="ignore"), [0]), ("c1", OneHotEncoder(), [1])]
    )
    pipeline = Pipeline([("prep", encoders), ("clf", LogisticRegression(max_iter=2000))])
    model = tmp_path / "pair.onnx"
    onx = to_onnx(pipeline.fit(grid, target), initial_types=[("x", StringTensorType([None, 2]))])
    model.write_bytes(onx.SerializeToString())
    store = LocalStore(tmp_path / "store")
    assert _quiet(["--store", store.uri, "publish", str(model), "--name", "pair"]) == 0
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "pair"}, pool)
    sent = json.dumps({"instances": [["a", None]]})
    response = service.handle(http_event("POST", "/models/pair/predict", sent))
    assert response["statusCode"] == 422, response["body"]
    error = body_of(response)["error"]
    assert "input 'x', column 1: 'nan' is not a category" in error
    assert "'nan' is how a null or an empty cell is sent: this column was trained on none" in error
