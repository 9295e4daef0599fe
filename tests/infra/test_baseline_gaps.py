"""`aiaas baseline` from a training CSV with empty cells: a model that takes missing values
(published with --allow-nonfinite) has them counted per feature in its drift baseline, and its
explanation background summarized from the complete rows; a model whose inputs must be finite
refuses them, naming the column. Before, every empty cell was "could not convert string to
float: ''", whichever the model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skl2onnx import to_onnx
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from functions.runtime.drift.baseline import BASELINE_FILE, DriftBaseline
from functions.runtime.explain.background import BACKGROUND_FILE
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.test_baseline_as_served import COLUMNS, frame


def test_empty_cells_are_counted_for_a_model_that_takes_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, y = frame()
    numbers = data[COLUMNS].to_numpy(np.float32).copy()
    numbers[::9, 1] = np.nan  # 17 of 150 sepal widths missing
    model = make_pipeline(SimpleImputer(), DecisionTreeClassifier(max_depth=3, random_state=0))
    model.fit(numbers, y)
    path = tmp_path / "model.onnx"
    path.write_bytes(to_onnx(model, numbers[:1], options={"zipmap": False}).SerializeToString())
    # Scaled before it is imputed: NaN reaches the Scaler, so publish takes the graph for one
    # that must be given finite numbers (an Imputer first takes gaps as it is: hunt_journey2 1).
    scaled = make_pipeline(StandardScaler(), SimpleImputer(), DecisionTreeClassifier(max_depth=3))
    scaled.fit(numbers, y)
    strict = tmp_path / "strict.onnx"
    options = {"zipmap": False}
    strict.write_bytes(to_onnx(scaled, numbers[:1], options=options).SerializeToString())
    pd.DataFrame(numbers, columns=[f"X_{i}" for i in range(4)]).to_csv(
        tmp_path / "train.csv", index=False
    )  # NaN is written as an empty cell
    store = LocalStore(tmp_path / "store")
    cli = ["--store", store.uri]
    for name, model_path, loose in (
        ("loose", path, ["--allow-nonfinite"]),
        ("strict", strict, []),
        ("imputing", path, []),
    ):
        assert main([*cli, "publish", str(model_path), "--name", name, *loose]) == 0
    capsys.readouterr()
    assert main([*cli, "baseline", "loose", str(tmp_path / "train.csv")]) == 0
    assert "(17 rows with missing values left out)" in capsys.readouterr().out
    prefix = version_prefix("loose", "1")
    base = DriftBaseline.from_json(store.get_bytes(f"{prefix}/{BASELINE_FILE}"))
    assert base.missed.tolist() == [0, 17, 0, 0] and base.counts[1].sum() == 133
    assert base.rows == 150 and store.exists(f"{prefix}/{BACKGROUND_FILE}")
    # What an explanation reports as its background says so too: its base value is the mean
    # answer over the complete rows, not over every training row.
    said = json.loads(store.get_bytes(f"{prefix}/{BACKGROUND_FILE}"))["source"]
    assert said == "k-means (10 centres) of 133 rows (17 rows with missing values left out)"
    assert main([*cli, "explain", "loose", "--inputs", "[[5.1, null, 1.4, 0.2]]", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["parameters"]["background"] == said

    assert main([*cli, "baseline", "strict", str(tmp_path / "train.csv")]) != 0
    err = capsys.readouterr().err
    assert "line 2: column 'X_1' is a missing value (an empty cell); this model takes " in err
    assert "--allow-nonfinite" in err
    assert not store.exists(f"{version_prefix('strict', '1')}/{BASELINE_FILE}")
    assert main([*cli, "baseline", "imputing", str(tmp_path / "train.csv")]) == 0


def test_gaps_in_a_float_column_beside_an_int64_column_are_counted(tmp_path: Path) -> None:
    """A DataFrame pipeline (float columns with gaps a SimpleImputer fills, an int64 column, a
    text column) published with --allow-nonfinite: its training CSV gives a baseline and an
    explanation background, as predict and batch take the gaps. Before, the int64 column,
    which holds no NaN, made every gap refused: "takes finite numbers only ... published with
    --allow-nonfinite", which it was; so no /explain and no drift (hunt_ownmodels 3)."""
    rng = np.random.default_rng(0)
    n = 120
    data = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n).astype(np.float32),
            "visits": rng.integers(0, 9, n).astype(np.int64),
            "city": rng.choice(["Paris", "Rome"], n),
        }
    )
    data.loc[::6, "age"] = np.nan  # 20 of 120 missing
    target = (data["visits"] > 4).to_numpy()
    columns = ColumnTransformer(
        [("num", SimpleImputer(), ["age", "visits"]), ("cat", OneHotEncoder(), ["city"])]
    )
    model = make_pipeline(columns, DecisionTreeClassifier(max_depth=3, random_state=0))
    model.fit(data, target)
    path = tmp_path / "model.onnx"
    path.write_bytes(to_onnx(model, data[:1], options={"zipmap": False}).SerializeToString())
    data.to_csv(tmp_path / "train.csv", index=False)  # NaN: an empty cell
    store = LocalStore(tmp_path / "store")
    cli = ["--store", store.uri]
    assert main([*cli, "publish", str(path), "--name", "shop", "--allow-nonfinite"]) == 0
    assert main([*cli, "baseline", "shop", str(tmp_path / "train.csv")]) == 0
    prefix = version_prefix("shop", "1")
    base = DriftBaseline.from_json(store.get_bytes(f"{prefix}/{BASELINE_FILE}"))
    assert base.missed.tolist() == [20, 0] and base.rows == n
    assert store.exists(f"{prefix}/{BACKGROUND_FILE}")
