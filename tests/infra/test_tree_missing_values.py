"""Missing values to tree models, as gradient-boosting users publish them (hunt_gbm 1).

XGBoost and LightGBM route NaN as their training learnt, and onnxmltools writes that route into
the graph (`nodes_missing_value_tracks_true`), so onnxruntime answers a row with gaps as the
library's own `predict_proba` does. Published with no flags, such a model answered every `null`
with a 422 telling the caller to publish again with `--allow-nonfinite` "(e.g. scikit-learn's
trees)", and a batch CSV of a wide table, where most rows have an empty cell, scored few rows.
`aiaas publish` now reads the trees: the input takes missing values, and every answer (simple
JSON over real HTTP, batch CSV with empty cells) equals the native library's prediction.

The 422's example was the wrong one: skl2onnx writes scikit-learn's trees with no node tracking
missing values, so NaN takes the "greater" branch at every split and a RandomForest fit on data
with gaps answers such rows otherwise than `predict_proba` (with 200). Those inputs stay
finite-only, the 422 no longer points there, and `--allow-nonfinite` for them gets a warning.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import lightgbm
import numpy as np
import onnxruntime as ort
import pytest
import xgboost
from onnxmltools import convert_lightgbm, convert_xgboost
from onnxmltools.convert.common.data_types import FloatTensorType
from skl2onnx import to_onnx
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import RandomForestClassifier

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.test_serve import start_serve

TAKES = (
    "input 'input' takes missing values (null, an empty CSV cell): the graph's trees send them "
    "the way each split learnt (XGBoost's and LightGBM's default directions), as their predict "
    "does"
)


@functools.cache
def data(task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test) float32 with a tenth of the values missing."""
    x, y = (load_breast_cancer if task == "binary" else load_diabetes)(return_X_y=True)
    x = x.astype(np.float32)
    x[np.random.default_rng(0).random(x.shape) < 0.1] = np.nan
    return x[::2], y[::2], x[1::2][:40]


def typed(x: np.ndarray) -> list[tuple[str, FloatTensorType]]:
    return [("input", FloatTensorType([None, x.shape[1]]))]


def xgboost_binary() -> tuple[bytes, np.ndarray]:
    x, y, test = data("binary")
    model = xgboost.XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1).fit(x, y)
    return convert_xgboost(model, initial_types=typed(x)).SerializeToString(), model.predict_proba(
        test
    )


def lightgbm_binary() -> tuple[bytes, np.ndarray]:
    x, y, test = data("binary")
    model = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1, n_jobs=1).fit(x, y)
    proto = convert_lightgbm(model, initial_types=typed(x), zipmap=False)
    return proto.SerializeToString(), model.predict_proba(test)


def xgboost_regressor() -> tuple[bytes, np.ndarray]:
    x, y, test = data("regression")
    model = xgboost.XGBRegressor(n_estimators=10, max_depth=3, n_jobs=1).fit(x, y)
    return convert_xgboost(model, initial_types=typed(x)).SerializeToString(), model.predict(test)


def lightgbm_regressor() -> tuple[bytes, np.ndarray]:
    x, y, test = data("regression")
    model = lightgbm.LGBMRegressor(n_estimators=10, verbose=-1, n_jobs=1).fit(x, y)
    return convert_lightgbm(model, initial_types=typed(x)).SerializeToString(), model.predict(test)


MODELS = {
    "xgb-bin": xgboost_binary,
    "lgb-bin": lightgbm_binary,
    "xgb-reg": xgboost_regressor,
    "lgb-reg": lightgbm_regressor,
}


def task(name: str) -> str:
    return "binary" if name.endswith("bin") else "regression"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStore, dict[str, str]]:
    """Each model published with no flags: what publish printed, by name."""
    root = tmp_path_factory.mktemp("tree-gaps")
    store = LocalStore(root / "store")
    said = {}
    for name, export in MODELS.items():
        path = root / f"{name}.onnx"
        path.write_bytes(export()[0])
        said[name] = published_output(store, path, name)
    return store, said


def published_output(store: LocalStore, path: Path, name: str, *flags: str) -> str:
    """What `aiaas publish` printed (the module's fixture has no capsys)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["--store", store.uri, "publish", str(path), "--name", name, *flags])
    assert code == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def base_url(published: tuple[LocalStore, dict[str, str]]) -> Iterator[str]:
    for server in start_serve(published[0].root):
        yield server.base


def nulls(x: np.ndarray) -> list[list[float | None]]:
    return [[None if np.isnan(v) else float(v) for v in row] for row in x]


def native(name: str) -> np.ndarray:
    return MODELS[name]()[1]


@pytest.mark.parametrize("name", list(MODELS))
def test_publish_reads_that_the_trees_take_missing_values(
    published: tuple[LocalStore, dict[str, str]], name: str
) -> None:
    store, said = published
    assert TAKES in said[name]
    (spec,) = Registry(store).manifest(name, "1").inputs
    assert (spec.finite, spec.gaps) == (True, True)  # NaN taken, infinity still refused


@pytest.mark.parametrize("name", list(MODELS))
def test_rows_with_gaps_are_answered_as_the_library_predicts(
    published: tuple[LocalStore, dict[str, str]], base_url: str, name: str
) -> None:
    test = data(task(name))[2]
    assert np.isnan(test).any(axis=1).sum() >= len(test) // 3  # 10 or 30 features: many gaps
    answer = httpx.post(f"{base_url}/models/{name}/predict", json={"inputs": nulls(test)})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = native(name)
    if task(name) == "binary":
        np.testing.assert_allclose(body["outputs"]["probabilities"], expected, atol=1e-6)
        labels = [p["label"] for p in body["predictions"]]
        assert labels == [str(int(v)) for v in expected.argmax(axis=1)]
    else:
        np.testing.assert_allclose(np.ravel(body["outputs"]["variable"]), expected, rtol=1e-5)
    # Infinity is no gap (1e39 is one in float32): still refused, as for any finite-only input.
    row = [1e39 if v is None else v for v in nulls(test[:1])[0]]
    inf = httpx.post(f"{base_url}/models/{name}/predict", json={"inputs": [row]})
    assert inf.status_code == 422, inf.text
    assert "out of float32's range" in inf.json()["error"]


@pytest.mark.parametrize("name", ["xgb-bin", "lgb-reg"])
def test_a_batch_csv_with_empty_cells_scores_every_row(
    capsys: pytest.CaptureFixture[str],
    published: tuple[LocalStore, dict[str, str]],
    tmp_path: Path,
    name: str,
) -> None:
    store = published[0]
    test = data(task(name))[2]
    path = tmp_path / "rows.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", *(f"input_{i}" for i in range(test.shape[1]))])
        for i, row in enumerate(test):  # an empty cell where pandas' to_csv writes NaN
            writer.writerow([f"r{i}", *("" if np.isnan(v) else repr(float(v)) for v in row)])
    capsys.readouterr()
    assert main(["--store", store.uri, "batch", name, str(path)]) == 0
    assert f"scored {len(test)} of {len(test)} rows" in capsys.readouterr().out
    with (store.root / "batch" / name / "output" / "rows.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(len(test))]
    expected = native(name)
    if task(name) == "binary":
        got = [[float(r[f"pred_probabilities_{c}"]) for c in (0, 1)] for r in rows]
        np.testing.assert_allclose(got, expected, atol=1e-6)
    else:
        got_values = [float(r["pred_variable"]) for r in rows]
        np.testing.assert_allclose(got_values, expected, rtol=1e-5)


def test_scikit_learns_forest_stays_finite_and_the_flag_is_warned_of(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """skl2onnx's RandomForest sends NaN one way: not read as taking gaps, the 422 no longer
    names it as a model to publish with --allow-nonfinite, and that flag gets a warning."""
    x, y, test = data("binary")
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(x, y)
    path = tmp_path / "forest.onnx"
    path.write_bytes(to_onnx(forest, x[:1]).SerializeToString())
    store = LocalStore(tmp_path / "store")
    strict = published_output(store, path, "forest")
    assert "takes missing values" not in strict and "warning" not in strict
    assert Registry(store).manifest("forest", "1").inputs[0].gaps is False
    flagged = published_output(store, path, "forest", "--allow-nonfinite")
    assert (
        "warning: --allow-nonfinite: the graph's trees send a missing value in 'X' the same way "
        "at every split (none of their nodes tracks missing values, as skl2onnx exports "
        "scikit-learn's trees), where scikit-learn's predict sends it the way each split learnt"
    ) in flagged
    # Why: the served answer for rows with gaps is not predict_proba's.
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    maps = session.run(["output_probability"], {"X": test})[0]
    served = np.array([[row[0], row[1]] for row in maps])
    assert np.abs(served - forest.predict_proba(test)).max() > 0.1
    # An XGBoost model fit without gaps (no node tracks one; its BRANCH_LT splits send NaN the
    # "greater" way, as XGBoost does) gets no such warning.
    clean = np.nan_to_num(x)
    booster = xgboost.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(clean, y)
    other = tmp_path / "xgb.onnx"
    other.write_bytes(convert_xgboost(booster, initial_types=typed(x)).SerializeToString())
    assert "warning" not in published_output(store, other, "xgb", "--allow-nonfinite")
