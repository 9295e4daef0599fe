"""`aiaas publish --data FILE` of a CSV in the `X_0 ... X_{F-1}` columns `aiaas batch` reads,
with empty cells (pandas' NaN): a model published with --allow-nonfinite (a SimpleImputer
pipeline) gets NaN for them and is scored as batch scores it; a model whose inputs must be
finite is refused saying how to publish one that takes gaps. Before, such a cell was the text
"" and both were "input 'X' value [0, 1] must be a number (float32); got ''", while batch,
baseline and compare read the same file (hunt_ownmodels 2)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main


def test_empty_cells_of_indexed_columns_are_missing_values(tmp_path: Path) -> None:
    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    x[::7, 1] = np.nan  # 22 of 150 sepal widths missing
    model = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=1000)).fit(x, y)
    path = tmp_path / "model.onnx"
    path.write_bytes(to_onnx(model, x[:1]).SerializeToString())
    # Scaled before it is imputed: NaN reaches the Scaler, so publish takes the graph for one
    # that must be given finite numbers (an Imputer first takes gaps as it is: hunt_journey2 1).
    scaled = make_pipeline(StandardScaler(), SimpleImputer(), LogisticRegression(max_iter=1000))
    strict = tmp_path / "strict.onnx"
    strict.write_bytes(to_onnx(scaled.fit(x, y), x[:1]).SerializeToString())
    held = pd.DataFrame(x, columns=[f"X_{i}" for i in range(4)]).assign(label=model.predict(x))
    held.to_csv(tmp_path / "held.csv", index=False)  # NaN: an empty cell
    store = LocalStore(tmp_path / "store")
    argv = ["--store", store.uri, "publish", str(path), "--data", str(tmp_path / "held.csv")]
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        assert main([*argv, "--name", "loose", "--allow-nonfinite", "--no-progress"]) == 0, (
            err.getvalue()
        )
        assert main([*argv, "--name", "imputing", "--no-progress"]) == 0, err.getvalue()
        argv[3] = str(strict)
        assert main([*argv, "--name", "strict", "--no-progress"]) != 0
    metrics = (Registry(store).manifest("loose", "1").metrics or {})["held_out"]
    assert (metrics["accuracy"], metrics["rows"]) == (1.0, 150)
    assert (Registry(store).manifest("imputing", "1").metrics or {})["held_out"] == metrics
    said = err.getvalue()
    assert "is a missing value (null); this model takes finite numbers only" in said
    assert "--allow-nonfinite" in said and "got ''" not in said
