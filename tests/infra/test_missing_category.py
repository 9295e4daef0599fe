"""A scikit-learn OneHotEncoder fit on a text column with gaps learns NaN as a category, which
skl2onnx exports as the string "nan". The user's missing value in that column (JSON null, an
empty CSV cell as pandas' to_csv writes NaN) must then reach the model as "nan", as scikit-learn
encodes it. Before: the predict API and JSONL refused null saying to send "" and an empty CSV
cell was sent as "", a category the model never saw (zeros with handle_unknown='ignore'), so
such rows were scored unlike `predict_proba`, silently in batch.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from skl2onnx import to_onnx
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

NAME = "shops"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStore, Any, pd.DataFrame]:
    """(store with `shops` published, the fitted pipeline, rows to score: region missing in
    every other one). A missing region means a class of its own, so "" and "nan" differ."""
    rng = np.random.default_rng(0)
    n = 120
    region = rng.choice(np.array(["north", "south", ""], dtype=object), n)
    region[region == ""] = np.nan  # a gap, as pandas' read_csv gives it
    frame = pd.DataFrame(
        {
            "size": rng.normal(0, 1, n).astype(np.float32),
            "region": pd.Series(region, dtype=object),
        }
    )
    target = np.where(frame["region"].isna(), "closed", np.where(frame["size"] > 0, "big", "small"))
    columns = ColumnTransformer(
        [
            ("num", StandardScaler(), ["size"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["region"]),
        ]
    )
    pipeline = Pipeline([("prep", columns), ("clf", LogisticRegression(max_iter=1000))])
    pipeline.fit(frame, target)
    root = tmp_path_factory.mktemp("missing-category")
    (root / "shops.onnx").write_bytes(to_onnx(pipeline, frame[:1]).SerializeToString())
    store = LocalStore(root / "store")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert (
            main(["--store", store.uri, "publish", str(root / "shops.onnx"), "--name", NAME]) == 0
        )
    regions = pd.Series(["north", np.nan] * 2, dtype=object)  # as pandas' read_csv gives gaps
    rows = pd.DataFrame({"size": np.array([0.5, -0.5, 1.5, -1.5], np.float32), "region": regions})
    return store, pipeline, rows


def test_publish_reads_the_missing_category_and_the_predict_api_sends_null_as_it(
    published: tuple[LocalStore, Any, pd.DataFrame], tmp_path: Path
) -> None:
    store, pipeline, rows = published
    region = next(s for s in Registry(store).manifest(NAME, "1").inputs if s.name == "region")
    assert region.missing == "nan"
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        assert main(["--store", store.uri, "show", f"{NAME}:1"]) == 0
    assert "region               string   [-1, 1]  null as 'nan'" in shown.getvalue()
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": NAME}, pool)
    records = json.loads(rows.to_json(orient="records"))  # NaN: null
    body = json.dumps({"instances": records})
    response = service.handle(http_event("POST", f"/models/{NAME}/predict", body))
    assert response["statusCode"] == 200, response["body"]
    served = np.asarray(body_of(response)["outputs"]["output_probability"])
    np.testing.assert_allclose(served, pipeline.predict_proba(rows), rtol=0, atol=1e-5)
    assert [p["label"] for p in body_of(response)["predictions"]] == list(pipeline.predict(rows))


def test_batch_csv_empty_cells_and_jsonl_nulls_score_as_predict_proba(
    published: tuple[LocalStore, Any, pd.DataFrame], tmp_path: Path
) -> None:
    store, pipeline, rows = published
    want = pipeline.predict_proba(rows)
    rows.to_csv(tmp_path / "rows.csv", index=False)  # a missing region: an empty cell
    rows.to_json(tmp_path / "rows.jsonl", orient="records", lines=True)  # and null
    for kind in ("csv", "jsonl"):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main(["--store", store.uri, "batch", NAME, str(tmp_path / f"rows.{kind}")]) == 0
    out = list(
        csv.DictReader(io.StringIO(store.get_bytes(f"batch/{NAME}/output/rows.csv").decode()))
    )
    got = np.array([[float(r[f"pred_output_probability_{k}"]) for k in range(3)] for r in out])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    lines = store.get_bytes(f"batch/{NAME}/output/rows.jsonl").decode().splitlines()
    got = np.array([json.loads(line)["pred_output_probability"] for line in lines])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_a_number_sent_as_text_in_a_record_names_its_value(
    published: tuple[LocalStore, Any, pd.DataFrame], tmp_path: Path
) -> None:
    """Before: "input 'size' expects float32; got text or null values, which does not convert
    safely", though a null is taken here and the record by feature name names the value."""
    store, _, _ = published
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": NAME}, pool)
    rows = [{"size": 0.5, "region": "north"}, {"size": "3.5", "region": None}]
    body = json.dumps({"instances": rows})
    response = service.handle(http_event("POST", f"/models/{NAME}/predict", body))
    assert response["statusCode"] == 422
    assert body_of(response)["error"] == ("instances[1].size must be a number (float32); got '3.5'")


def test_a_jsonl_number_sent_as_text_names_its_value(
    published: tuple[LocalStore, Any, pd.DataFrame], tmp_path: Path
) -> None:
    """A one-value-a-row input (a DataFrame column) says the value, as a record by feature name
    does (before: "input 'size' must hold float32 numbers; got text")."""
    store, _, _ = published
    rows = tmp_path / "typed.jsonl"
    rows.write_text('{"size": 0.5, "region": "north"}\n{"size": "3.5", "region": "north"}\n')
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["--store", store.uri, "batch", NAME, str(rows)]) == 0
    (error,) = store.get_bytes(f"batch/{NAME}/output/typed.jsonl.errors.jsonl").splitlines()
    assert json.loads(error) == {
        "line": 2,
        "error": "input 'size' must hold float32 numbers; got text '3.5'",
    }


def test_oip_json_null_in_a_bytes_tensor_is_the_missing_category_as_in_records(
    published: tuple[LocalStore, Any, pd.DataFrame], tmp_path: Path
) -> None:
    """Before: a 422 "tensor 'region' is BYTES: send strings" for the null that a record by
    feature name sends as the model's missing category, so the two protocols disagreed."""
    store, pipeline, rows = published
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": NAME}, pool)
    regions = [None if isinstance(r, float) else r for r in rows["region"]]
    inputs = [
        {"name": "size", "datatype": "FP32", "shape": [4, 1], "data": rows["size"].tolist()},
        {"name": "region", "datatype": "BYTES", "shape": [4, 1], "data": regions},
    ]
    body = json.dumps({"inputs": inputs, "outputs": [{"name": "output_probability"}]})
    response = service.handle(http_event("POST", f"/v2/models/{NAME}/infer", body))
    assert response["statusCode"] == 200, response["body"]
    (output,) = body_of(response)["outputs"]
    served = np.asarray(output["data"], dtype=np.float64).reshape(output["shape"])
    np.testing.assert_allclose(served, pipeline.predict_proba(rows), rtol=0, atol=1e-5)


def test_publish_data_reads_an_empty_cell_as_the_missing_category_as_batch_does(
    published: tuple[LocalStore, Any, pd.DataFrame], tmp_path: Path
) -> None:
    """`publish --data` of the rows batch scores, labelled with the pipeline's own predict:
    accuracy 1, as batch's labels and compare's. Before: the empty cells were sent as "" (no
    category: zeros), and the card read 0.5 on these rows (hunt_ownmodels 1)."""
    store, pipeline, rows = published
    held = rows.assign(label=pipeline.predict(rows))
    held.to_csv(tmp_path / "held.csv", index=False)  # a missing region: an empty cell
    assert "" in (tmp_path / "held.csv").read_text().splitlines()[2].split(",")
    model = Path(store.uri).parent / "shops.onnx"
    argv = ["--store", store.uri, "publish", str(model), "--name", "held", "--data"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main([*argv, str(tmp_path / "held.csv"), "--no-progress"]) == 0
    metrics = (Registry(store).manifest("held", "1").metrics or {})["held_out"]
    assert (metrics["accuracy"], metrics["rows"]) == (1.0, 4)


@pytest.mark.parametrize("marker", ["NaN", "NA", "null"])
def test_a_csv_gap_written_as_pandas_na_marker_is_the_missing_category(
    published: tuple[LocalStore, Any, pd.DataFrame], tmp_path: Path, marker: str
) -> None:
    """A CSV whose gaps are written `NaN` (`to_csv(na_rep="NaN")`), `NA` (R) or `null`: pandas
    reads each as NaN, so `predict_proba` on that file encodes them as the missing category.
    Before: batch and `publish --data` sent the string "NaN" (a category the model never saw:
    zeros), while the same row's numeric `NaN` was a gap; batch scored such rows unlike the
    model with success and the card's accuracy on them was 0.5 (hunt_journey13 1)."""
    store, pipeline, rows = published
    held = rows.assign(label=pipeline.predict(rows))
    held.to_csv(tmp_path / "held.csv", index=False, na_rep=marker)
    assert marker in (tmp_path / "held.csv").read_text().splitlines()[2].split(",")
    read = pd.read_csv(tmp_path / "held.csv")  # as the data scientist reads the file back
    want = pipeline.predict_proba(read.drop(columns=["label"]).astype({"size": np.float32}))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["--store", store.uri, "batch", NAME, str(tmp_path / "held.csv")]) == 0
    out = list(
        csv.DictReader(io.StringIO(store.get_bytes(f"batch/{NAME}/output/held.csv").decode()))
    )
    got = np.array([[float(r[f"pred_output_probability_{k}"]) for k in range(3)] for r in out])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert [r["region"] for r in out] == ["north", marker] * 2  # passed through as written
    model = Path(store.uri).parent / "shops.onnx"
    name = f"held-{marker.lower()}"
    argv = ["--store", store.uri, "publish", str(model), "--name", name, "--data"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main([*argv, str(tmp_path / "held.csv"), "--no-progress"]) == 0
    metrics = (Registry(store).manifest(name, "1").metrics or {})["held_out"]
    assert (metrics["accuracy"], metrics["rows"]) == (1.0, 4)


def test_a_category_pandas_keeps_is_no_gap(
    published: tuple[LocalStore, Any, pd.DataFrame], tmp_path: Path
) -> None:
    """Only pandas' own NA spellings are gaps: `?` (a category pandas keeps as text, unknown to
    this model) is still sent as "?", scored as `predict_proba` scores that frame."""
    store, pipeline, rows = published
    odd = rows.assign(region=["north", "?", "n.a.", "south"])
    odd.to_csv(tmp_path / "odd.csv", index=False)
    want = pipeline.predict_proba(odd)
    assert not np.allclose(want[1], pipeline.predict_proba(rows)[1], atol=1e-3)  # "?" != gap
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["--store", store.uri, "batch", NAME, str(tmp_path / "odd.csv")]) == 0
    out = list(
        csv.DictReader(io.StringIO(store.get_bytes(f"batch/{NAME}/output/odd.csv").decode()))
    )
    got = np.array([[float(r[f"pred_output_probability_{k}"]) for k in range(3)] for r in out])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_a_jsonl_nan_in_a_text_column_is_the_missing_category(
    published: tuple[LocalStore, Any, pd.DataFrame], tmp_path: Path
) -> None:
    """JSONL written with `json.dumps(row)` of a pandas row writes a missing text as NaN (its
    numbers' gaps too, which batch took): batch refused each such row ("must hold strings; got
    float64") and `publish --data` the whole file ("got a number where text goes"), where null
    is this model's missing category, as `predict_proba` encodes the NaN (hunt_journey13 3)."""
    store, pipeline, rows = published
    held = rows.assign(label=pipeline.predict(rows))
    path = tmp_path / "dumped.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in held.to_dict("records")))
    assert '"region": NaN' in path.read_text()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["--store", store.uri, "batch", NAME, str(path)]) == 0
    lines = store.get_bytes(f"batch/{NAME}/output/dumped.jsonl").decode().splitlines()
    got = np.array([json.loads(line)["pred_output_probability"] for line in lines])
    np.testing.assert_allclose(got, pipeline.predict_proba(rows), rtol=0, atol=1e-5)
    model = Path(store.uri).parent / "shops.onnx"
    argv = ["--store", store.uri, "publish", str(model), "--name", "dumped", "--data", str(path)]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main([*argv, "--no-progress"]) == 0
    metrics = (Registry(store).manifest("dumped", "1").metrics or {})["held_out"]
    assert (metrics["accuracy"], metrics["rows"]) == (1.0, 4)


def test_compare_reads_the_labels_of_jsonl_lines_with_a_nan(
    published: tuple[LocalStore, Any, pd.DataFrame], tmp_path: Path
) -> None:
    """`aiaas compare --data` of JSONL written by `json.dumps` (a gap: NaN): each line with a NaN
    had no label read (orjson refuses NaN), so the metrics left out every row with a gap ("on 2
    labelled rows" of 4, here the rows the model calls `closed`), and a first line with a NaN
    hid the label column altogether: no metrics (hunt_journey13 4)."""
    store, pipeline, rows = published
    held = rows.iloc[[1, 0, 3, 2]].assign(label=lambda f: pipeline.predict(f))
    assert held["region"].isna().iloc[0]  # the first line has a NaN
    path = tmp_path / "both.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in held.to_dict("records")))
    said = io.StringIO()
    with contextlib.redirect_stdout(said), contextlib.redirect_stderr(io.StringIO()):
        assert main(["--store", store.uri, "compare", NAME, "1", "1", "--data", str(path)]) == 0
    assert "metrics on 4 labelled rows (column 'label', by default)" in said.getvalue()
    assert "accuracy  A 1  B 1" in said.getvalue()
