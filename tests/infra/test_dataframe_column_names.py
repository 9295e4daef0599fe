"""A DataFrame whose column names are not identifiers, exported by skl2onnx with its defaults.

scikit-learn's own `load_iris(as_frame=True)` names its columns "sepal length (cm)", ...;
`to_onnx(pipeline, frame[:1])` makes one input per column named "sepal_length__cm_", ... The
data scientist's records (`frame.to_dict("records")`), columns and training CSV name the
columns as the DataFrame does: each was refused ('unknown input', 'the header lacks
column(s)'). They are scored as scikit-learn scores them, through the real predict handler
(API Gateway v2.0 events), `aiaas batch` (CSV and JSONL), `aiaas baseline` and `aiaas explain`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.column_names import column_for, exported_name
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.functions.test_predict_events import body_of, http_event

NAME = "iris-frame"


@dataclass
class Iris:
    root: Path
    store: LocalStore
    frame: pd.DataFrame  # the training rows, sklearn's own column names, and the target
    proba: np.ndarray  # the pipeline's predict_proba of those rows


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> Iris:
    root = tmp_path_factory.mktemp("frame-names")
    data = load_iris(as_frame=True)
    x = data.data.astype(np.float32)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(
        x, data.target
    )
    (root / "iris.onnx").write_bytes(to_onnx(pipeline, x[:1]).SerializeToString())
    store = LocalStore(root / "store")
    assert main(["--store", store.uri, "publish", str(root / "iris.onnx"), "--name", NAME]) == 0
    frame = x.assign(target=data.target)
    return Iris(root, store, frame, pipeline.predict_proba(x))


def _service(iris: Iris) -> PredictService:
    pool = ModelPool(Registry(iris.store), ArtifactCache(iris.store, iris.root / "cache"))
    return service_from_env({"AIAAS_MODEL": NAME}, pool)


def _predict(service: PredictService, doc: dict[str, Any]) -> tuple[int, Any]:
    event = http_event("POST", f"/models/{NAME}/predict", json.dumps(doc))
    response = service.handle(event)
    return response["statusCode"], body_of(response)


def test_skl2onnx_renames_the_columns_as_the_runtime_expects(iris: Iris) -> None:
    names = [i.name for i in Registry(iris.store).manifest(NAME, "1").inputs]
    assert names == [exported_name(c) for c in iris.frame.columns[:4]]
    assert names[0] == "sepal_length__cm_"
    assert exported_name("2nd-try") == "_2nd_try"
    # two columns that rename alike stand for neither; an exact name wins over a renamed one
    assert column_for({"a_b"}, ["a b", "a.b"]) == {}
    assert column_for({"a_b"}, ["a b", "a_b"]) == {}


def test_records_and_columns_by_the_dataframes_names(iris: Iris) -> None:
    service = _service(iris)
    rows = iris.frame.iloc[[0, 60, 120], :4]
    status, records = _predict(service, {"instances": rows.to_dict("records")})
    assert status == 200, records
    proba = records["outputs"]["output_probability"]
    np.testing.assert_allclose(proba, iris.proba[[0, 60, 120]], rtol=1e-4, atol=1e-6)
    status, columns = _predict(service, {"inputs": rows.to_dict("list")})
    assert status == 200, columns
    assert columns["outputs"] == records["outputs"]
    status, body = _predict(service, {"instances": [{**rows.iloc[0].to_dict(), "id": 1}]})
    assert status == 200, body  # a field that is no input is left aside (a record's id)
    np.testing.assert_allclose(body["outputs"]["output_probability"], proba[:1], atol=1e-6)
    renamed = {**rows.iloc[0].to_dict(), "petal": 1}
    del renamed[rows.columns[3]]
    status, body = _predict(service, {"instances": [renamed]})
    assert status == 422, body  # the input it lacks named too (hunt_journey8 5)
    assert body["error"] == (
        "instances[0] lacks input 'petal_width__cm_' (petal_width__cm_: float32 [-1, 1]) and "
        "has fields the model does not read: 'petal'; the model reads sepal_length__cm_, "
        "sepal_width__cm_, petal_length__cm_, petal_width__cm_"
    ), body


def _batch(iris: Iris, capsys: pytest.CaptureFixture[str], path: Path) -> Path:
    assert main(["--store", iris.store.uri, "batch", NAME, str(path)]) == 0, capsys.readouterr()
    out = iris.store.root / "batch" / NAME / "output"
    summary = json.loads((out / f"{path.name}.summary.json").read_text())
    assert (summary["status"], summary["scored_rows"]) == ("succeeded", len(iris.frame))
    return out / path.name


def test_batch_scores_the_training_csv_and_records(
    iris: Iris, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path = iris.root / "train.csv"
    iris.frame.to_csv(csv_path, index=False)
    scored = pd.read_csv(_batch(iris, capsys, csv_path))
    assert list(scored.columns[:5]) == list(iris.frame.columns)
    got = scored[[f"pred_output_probability_{i}" for i in range(3)]].to_numpy()
    np.testing.assert_allclose(got, iris.proba, rtol=1e-4, atol=1e-6)
    jsonl_path = iris.root / "train.jsonl"
    iris.frame.to_json(jsonl_path, orient="records", lines=True)
    lines = [
        json.loads(line) for line in _batch(iris, capsys, jsonl_path).read_text().split("\n")[:-1]
    ]
    np.testing.assert_allclose(
        [line["pred_output_probability"] for line in lines], iris.proba, rtol=1e-4, atol=1e-6
    )


def test_baseline_and_explain_read_the_training_csv(
    iris: Iris, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path = iris.root / "baseline.csv"
    iris.frame.to_csv(csv_path, index=False)
    assert main(["--store", iris.store.uri, "baseline", NAME, str(csv_path)]) == 0
    capsys.readouterr()
    argv = ["--store", iris.store.uri, "explain", NAME, "--file", str(csv_path), "--json"]
    assert main(argv) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == len(iris.frame)
    first = np.asarray(rows[0]["attributions"])
    gap = np.asarray(rows[0]["prediction"]) - np.asarray(rows[0]["base_value"])
    np.testing.assert_allclose(first.sum(axis=0), gap, atol=1e-5)
    np.testing.assert_allclose(rows[0]["prediction"], iris.proba[0], rtol=1e-4, atol=1e-6)
