"""`aiaas baseline` for a wide table where most rows have a gap (hunt_gbm 2).

A LightGBM model on breast_cancer's 30 columns with a tenth of the values missing (XGBoost's
and LightGBM's exports take gaps: tests/infra/test_tree_missing_values.py) has a training file
in which almost every row holds an empty cell. The explanation background was summarized from
the complete rows only: with a gap in every row `aiaas baseline` refused outright ("add complete
rows"), so the version got neither a background nor a drift baseline, and with 9 complete rows
of 285 every explanation was against those 9 (a base value far from the training answers').
Such a file's rows are now all used, each gap filled with its column's median over the rows that
hold it (as `aiaas train` fills its own), and the background's source says so; a file whose rows are mostly complete still
leaves out the few with gaps (tests/infra/test_baseline_gaps.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
import pytest
from onnxmltools import convert_lightgbm
from onnxmltools.convert.common.data_types import FloatTensorType
from sklearn.datasets import load_breast_cancer

from functions.runtime.drift.baseline import BASELINE_FILE, DriftBaseline
from functions.runtime.explain.background import BACKGROUND_FILE
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from infra.cli.main import main


@pytest.mark.parametrize("every_row", [True, False], ids=["gap-in-every-row", "9-complete"])
def test_a_table_of_mostly_gappy_rows_gets_a_baseline_of_all_its_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], every_row: bool
) -> None:
    x, y = load_breast_cancer(return_X_y=True)
    x = x.astype(np.float32)[::2]
    y = y[::2]
    rng = np.random.default_rng(0)
    x[rng.random(x.shape) < 0.1] = np.nan
    if every_row:
        x[np.arange(len(x)), rng.integers(0, 30, len(x))] = np.nan
    gappy = int(np.isnan(x).any(axis=1).sum())
    assert gappy > len(x) // 2
    model = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1, n_jobs=1).fit(x, y)
    path = tmp_path / "model.onnx"
    typed = [("input", FloatTensorType([None, 30]))]
    path.write_bytes(convert_lightgbm(model, initial_types=typed, zipmap=False).SerializeToString())
    columns = [f"input_{i}" for i in range(30)]
    pd.DataFrame(x, columns=columns).to_csv(tmp_path / "train.csv", index=False)  # NaN: empty
    store = LocalStore(tmp_path / "store")
    cli = ["--store", store.uri]
    assert main([*cli, "publish", str(path), "--name", "gbm"]) == 0
    capsys.readouterr()
    assert main([*cli, "baseline", "gbm", str(tmp_path / "train.csv")]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    missing = int(np.isnan(x).sum())
    filled = f"({missing:,} missing values of {gappy:,} rows filled with their column's median)"
    assert f"background = k-means (10 centres) of {len(x)} rows {filled}" in out
    prefix = version_prefix("gbm", "1")
    base = DriftBaseline.from_json(store.get_bytes(f"{prefix}/{BASELINE_FILE}"))
    assert base.rows == len(x) and base.missed.tolist() == np.isnan(x).sum(axis=0).tolist()
    background = json.loads(store.get_bytes(f"{prefix}/{BACKGROUND_FILE}"))
    assert background["source"].endswith(filled)
    # Explanations run against it, and its base value is the answer over the whole table's
    # centres, near the mean of the training rows' own answers (not 9 complete rows').
    row = [None if np.isnan(v) else float(v) for v in x[1]]
    assert main([*cli, "explain", "gbm", "--inputs", json.dumps([row]), "--json"]) == 0
    explained = json.loads(capsys.readouterr().out)
    assert explained["parameters"]["background"] == background["source"]
    (answer,) = explained["explanations"]
    np.testing.assert_allclose(
        np.sum(answer["attributions"], axis=0) + answer["base_value"],
        answer["prediction"],
        atol=1e-5,
    )
    mean_answer = model.predict_proba(x)[:, 1].mean()
    assert abs(answer["base_value"][1] - mean_answer) < 0.1
