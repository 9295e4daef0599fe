"""A string column whose frame held both Python None and NaN, one-hot encoded by scikit-learn.

scikit-learn's OneHotEncoder learns None and NaN as two categories (skl2onnx's "None" and
"nan") and answers them apart. A JSON null is either (json.dumps writes None so, pandas'
to_json NaN too), and was served as NaN's category: a record built from the frame's None got
NaN's answer, the opposite class here, with success. Such a null is now refused naming both
texts; "None", "nan", an empty CSV cell (NaN, as read_csv reads it) and a JSONL NaN (json.dumps
of a NaN) are served as predict_proba answers them (sent_values.ambiguous_null).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skl2onnx import to_onnx
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from functions.predict.service import service_from_env
from functions.runtime.store import LocalStore
from tests.batch_support import pool
from tests.cli_run import run
from tests.functions.test_predict_events import body_of, http_event


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Pipeline]:
    tmp = tmp_path_factory.mktemp("none_nan")
    rng = np.random.default_rng(0)
    kinds = rng.choice(["a", "b", "none", "nan"], 400)
    city = pd.Series(kinds, dtype=object)
    city[kinds == "none"], city[kinds == "nan"] = None, np.nan
    frame = pd.DataFrame({"city": city, "x": rng.normal(size=400).astype(np.float32)})
    y = np.isin(kinds, ["b", "none"]).astype(int)  # None is class 1, NaN class 0
    encode = ColumnTransformer([("c", OneHotEncoder(handle_unknown="ignore"), ["city"])],
                               remainder="passthrough")  # fmt: skip
    pipeline = Pipeline([("ct", encode), ("lr", LogisticRegression(C=100.0))]).fit(frame, y)
    path = tmp / "model.onnx"
    path.write_bytes(to_onnx(pipeline, frame[:1], target_opset=17).SerializeToString())
    code, _, err = run(LocalStore(tmp / "store"), "publish", str(path), "--name", "cities")
    assert code == 0, err
    return tmp, pipeline


def test_a_null_is_refused_naming_both_texts_and_each_text_answers_as_sklearn(
    published: tuple[Path, Pipeline],
) -> None:
    tmp, pipeline = published
    service = service_from_env({"AIAAS_MODEL": "cities"}, pool(LocalStore(tmp / "store"), tmp))

    def ask(city: object) -> dict:
        body = json.dumps({"instances": [{"city": city, "x": 0.0}]})
        answer = service.handle(http_event("POST", "/models/cities/predict", body))
        return {"status": answer["statusCode"], **body_of(answer)}

    refused = ask(None)
    assert refused["status"] == 422
    assert refused["error"] == (
        "input 'city' holds a null, which could be either of two categories its encoder learnt "
        'apart: send "None" for a value missing as Python None in the frame the model was fit '
        'on, or "nan" for one missing as NaN (an empty CSV cell is NaN, as pandas\' read_csv '
        "reads it)"
    )
    frame = pd.DataFrame({"city": pd.Series([None, np.nan], dtype=object), "x": [0.0, 0.0]})
    expected = pipeline.predict_proba(frame)
    assert expected[0, 1] > 0.9 and expected[1, 1] < 0.1  # the two answers differ
    for text, want in (("None", expected[0]), ("nan", expected[1])):
        said = ask(text)
        assert said["status"] == 200, said
        np.testing.assert_allclose(said["outputs"]["output_probability"][0], want, atol=1e-5)


def test_batch_reads_an_empty_cell_and_a_jsonl_nan_as_nan_and_a_jsonl_null_is_a_bad_row(
    published: tuple[Path, Pipeline],
) -> None:
    tmp, pipeline = published
    store = LocalStore(tmp / "store")
    csv = tmp / "rows.csv"
    csv.write_text("city,x\n,0\nNone,0\na,0\n")
    code, _, err = run(store, "batch", "cities", str(csv), "--wait")
    assert code == 0, err
    scored = pd.read_csv(tmp / "store" / "batch" / "cities" / "output" / "rows.csv")
    # the empty cell is NaN (read_csv); "None" the Python None the encoder learnt (docs/registry.md)
    frame = pd.DataFrame({"city": pd.Series([np.nan, None, "a"], dtype=object), "x": [0.0] * 3})
    expected = pipeline.predict_proba(frame)[:, 1]
    np.testing.assert_allclose(scored["pred_output_probability_1"], expected, atol=1e-5)

    lines = tmp / "rows.jsonl"
    lines.write_text('{"city": null, "x": 0}\n{"city": NaN, "x": 0}\n{"city": "None", "x": 0}\n')
    run(store, "batch", "cities", str(lines), "--wait")  # exit 1: a row failed
    output = tmp / "store" / "batch" / "cities" / "output"
    errors = [
        json.loads(line) for line in (output / "rows.jsonl.errors.jsonl").read_text().splitlines()
    ]
    assert [e["line"] for e in errors] == [1]
    assert "could be either of two categories" in errors[0]["error"]
    answered = [
        json.loads(line)
        for line in (output / "rows.jsonl").read_text().replace("NaN", "null").splitlines()
    ]
    got = [row["pred_output_probability"][1] for row in answered]
    np.testing.assert_allclose(got, expected[:2], atol=1e-5)  # NaN, then "None"
