"""`aiaas baseline` from a user's own training CSV (plain decimals such as 5.1) for a model with
FP32 inputs, as LightGBM / XGBoost / skl2onnx exports have: served, those same rows fall in the
same bins, none outside the training range. Reported: serving the training rows back showed
DRIFT on most features (the CSV's float64 5.1 was an edge that the served float32 5.1 fell
below). Reported again for simple JSON requests: their decoded rows are float64 (the cast to
float32 happens in the model), so a served 0.2 fell below the baseline's float32 edge 0.2.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skl2onnx import to_onnx
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeClassifier

from functions.runtime.codecs import simple
from functions.runtime.drift.baseline import BASELINE_FILE, DriftBaseline
from functions.runtime.drift.live import LiveHistograms
from functions.runtime.model import LoadedModel
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.store import LocalStore
from infra.cli.main import main

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def frame() -> tuple[pd.DataFrame, np.ndarray]:
    """Iris as read from a CSV (float64: 5.1, 3.5, ...) and a colour column."""
    x, y = load_iris(return_X_y=True)
    data = pd.DataFrame(x, columns=COLUMNS)
    data["colour"] = np.array(["red", "green", "blue"])[np.arange(len(data)) % 3]
    return data, y


def publish_with_baseline(tmp_path: Path, model: object, sample: object, data: pd.DataFrame) -> str:
    path = tmp_path / "model.onnx"
    path.write_bytes(
        to_onnx(model, sample, options={id(model): {"zipmap": False}}).SerializeToString()
    )
    store = LocalStore(tmp_path / "store")
    data.to_csv(tmp_path / "train.csv", index=False, quoting=csv.QUOTE_MINIMAL)
    assert main(["--store", store.uri, "publish", str(path), "--name", "iris"]) == 0
    assert main(["--store", store.uri, "baseline", "iris", str(tmp_path / "train.csv")]) == 0
    return store.uri


def served_counts(
    uri: str, inputs: dict[str, np.ndarray], records: list[dict[str, object]] | None = None
) -> tuple[LiveHistograms, DriftBaseline]:
    """The live histograms of the predict path after serving `inputs` (as the model reads
    them), or `records` as a simple JSON body's instances (decoded as the predict route does)."""
    registry = Registry(LocalStore(uri))
    manifest = registry.manifest("iris", "1")
    if records is not None:
        inputs = simple.decode({"instances": records}, manifest)
    raw = registry.store.get_bytes(f"{version_prefix('iris', '1')}/{BASELINE_FILE}")
    baseline = DriftBaseline.from_json(raw)
    model = LoadedModel(manifest, registry.store.root / version_prefix("iris", "1") / "model.onnx")
    live = LiveHistograms(baseline, manifest)
    live.record(inputs, model.predict(inputs))
    live.fold()
    return live, baseline


@pytest.mark.parametrize("body", ["typed", "json"])
@pytest.mark.parametrize("shape", ["one-input", "dataframe"])
def test_the_training_rows_served_back_fall_in_their_own_bins(
    tmp_path: Path, shape: str, body: str
) -> None:
    data, y = frame()
    tree = DecisionTreeClassifier(max_depth=3, random_state=0)
    numbers = data[COLUMNS].to_numpy(np.float32)
    if shape == "one-input":  # batch's columns X_0 ... X_3 name the one [N, 4] input
        model = tree.fit(numbers, y)
        csv_rows = pd.DataFrame(data[COLUMNS].to_numpy(), columns=[f"X_{i}" for i in range(4)])
        uri = publish_with_baseline(tmp_path, model, numbers[:1], csv_rows)
        inputs = {"X": numbers}
        records = [{"X": row} for row in data[COLUMNS].to_numpy().tolist()]
    else:  # one [N, 1] input a column, FP32 numbers (trees want float32) and strings
        typed = data.astype(dict.fromkeys(COLUMNS, np.float32))
        columns = ColumnTransformer([("c", OneHotEncoder(), ["colour"])], remainder="passthrough")
        model = make_pipeline(columns, tree).fit(typed, y)
        uri = publish_with_baseline(tmp_path, model, typed[:1], data)
        inputs = {c: typed[[c]].to_numpy() for c in COLUMNS}
        inputs["colour"] = data[["colour"]].to_numpy(object)
        records = data.to_dict("records")
    live, baseline = served_counts(uri, inputs, records if body == "json" else None)
    assert live.rows == baseline.rows == len(data)
    assert live.below.tolist() == live.above.tolist() == [0] * 4
    np.testing.assert_array_equal(live.counts, baseline.counts)
