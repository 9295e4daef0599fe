"""Acceptance: a scikit-learn pipeline trained on a pandas DataFrame, exported by skl2onnx with
its default options, gets one `[N, 1]` input per column (a string one for the categorical
column). Published with `aiaas publish` and no flags, it answers records, columns and OIP over
real HTTP (`aiaas serve`) and JSONL batch records exactly as scikit-learn's own `predict` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from skl2onnx import to_onnx
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.test_serve import start_serve

MODEL = "iris-frame"
NUMERIC = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@dataclass
class Published:
    store: LocalStore
    pipeline: Any
    frame: pd.DataFrame  # rows to score, as the pipeline takes them


def _frame() -> tuple[pd.DataFrame, np.ndarray]:
    iris = load_iris(as_frame=True)
    frame = iris.data.astype(np.float32)
    frame.columns = NUMERIC
    frame["colour"] = np.where(iris.data.iloc[:, 0] > 5.8, "dark", "light")
    return frame, np.asarray(iris.target_names)[iris.target]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    root = tmp_path_factory.mktemp("sklearn-dataframe")
    frame, target = _frame()
    columns = ColumnTransformer(
        [("num", StandardScaler(), NUMERIC), ("cat", OneHotEncoder(), ["colour"])]
    )
    pipeline = Pipeline([("columns", columns), ("model", LogisticRegression(max_iter=1000))])
    pipeline.fit(frame, target)
    path = root / "iris-frame.onnx"
    path.write_bytes(to_onnx(pipeline, frame[:1]).SerializeToString())  # default options
    store = LocalStore(root / "store")
    assert main(["--store", store.uri, "publish", str(path), "--name", MODEL]) == 0
    return Published(store, pipeline, frame.iloc[::10].reset_index(drop=True))


@pytest.fixture(scope="module")
def base_url(published: Published) -> Iterator[str]:
    for server in start_serve(published.store.root):
        yield server.base


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (v if isinstance(v, str) else float(v)) for k, v in r.items()}
        for r in frame.to_dict("records")
    ]


def _check(published: Published, body: dict[str, Any]) -> None:
    assert [p["label"] for p in body["predictions"]] == list(
        published.pipeline.predict(published.frame)
    )
    np.testing.assert_allclose(
        body["outputs"]["output_probability"],
        published.pipeline.predict_proba(published.frame),
        rtol=1e-4,
        atol=1e-5,
    )


def test_records_of_several_rows(published: Published, base_url: str) -> None:
    body = {"instances": _records(published.frame)}
    answer = httpx.post(f"{base_url}/models/{MODEL}/predict", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    _check(published, answer.json())


def test_columns_as_flat_lists(published: Published, base_url: str) -> None:
    records = _records(published.frame)
    body = {"inputs": {name: [r[name] for r in records] for name in records[0]}}
    answer = httpx.post(f"{base_url}/models/{MODEL}/predict", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    _check(published, answer.json())


def test_oip_json(published: Published, base_url: str) -> None:
    records = _records(published.frame)
    tensors = [
        {
            "name": name,
            "shape": [len(records), 1],
            "datatype": "BYTES" if name == "colour" else "FP32",
            "data": [r[name] for r in records],
        }
        for name in records[0]
    ]
    answer = httpx.post(f"{base_url}/v2/models/{MODEL}/infer", json={"inputs": tensors}, timeout=30)
    assert answer.status_code == 200, answer.text
    outputs = {item["name"]: item["data"] for item in answer.json()["outputs"]}
    assert outputs["output_label"] == list(published.pipeline.predict(published.frame))


def test_batch_jsonl_records(
    published: Published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    records = _records(published.frame)
    lines = [json.dumps(dict(r, id=i)) for i, r in enumerate(records)]
    lines.insert(1, json.dumps({"sepal_length": 5.0, "id": "bad"}))  # line 2: features missing
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(lines) + "\n")
    assert main(["--store", published.store.uri, "batch", MODEL, str(data)]) == 0
    output = published.store.get_bytes(f"batch/{MODEL}/output/rows.jsonl").decode()
    scored = [json.loads(line) for line in output.splitlines()]
    assert [row["id"] for row in scored] == list(range(len(records)))
    assert [row["pred_label"] for row in scored] == list(
        published.pipeline.predict(published.frame)
    )
    errors = published.store.get_bytes(f"batch/{MODEL}/output/rows.jsonl.errors.jsonl").decode()
    assert [json.loads(line) for line in errors.splitlines()] == [
        {"line": 2, "error": "missing input 'sepal_width'"}
    ]
