"""A data scientist's scikit-learn pipelines trained on pandas DataFrames and exported by
skl2onnx as its docs show (`to_onnx(pipeline, frame[:1])`, or `convert_sklearn` with one
FloatTensorType([None, 1]) per column): one [N, 1] input per column. `aiaas baseline`, `aiaas
explain` and explain over real HTTP (`aiaas serve`) give one feature per column; served traffic
with one shifted column is flagged by that column's name (`aiaas monitor`, the drift job).
A DataFrame with a string column: test_explain_categorical.py."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import shap
from shap.utils._legacy import DenseData
from skl2onnx import convert_sklearn, to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_wine
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from functions.drift.job import DriftSettings, run
from functions.runtime.explain.background import BACKGROUND_FILE, Background
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.test_serve import start_serve

COLUMNS = ["alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols"]
ONE = ["f0", "f1", "f2", "f3", "f4"]
WIDE = ["a_0", "a_1", "b"]  # an [N, k] input's columns: its name and index


@dataclass
class Frames:
    store: LocalStore
    base: str
    root: Path
    wine: Any  # the fitted scikit-learn pipeline
    frame: pd.DataFrame  # its training rows


def _csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def _cli(store: LocalStore, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["--store", store.uri, *argv])
    out, err = capsys.readouterr()
    return code, out + err


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Frames]:
    root = tmp_path_factory.mktemp("explain-dataframe")
    store = LocalStore(root / "store")
    data = load_wine(as_frame=True)
    frame = data.data.iloc[:, :6].astype(np.float32)
    frame.columns = COLUMNS
    wine = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    wine.fit(frame, data.target)
    (root / "wine.onnx").write_bytes(to_onnx(wine, frame[:1]).SerializeToString())
    rng = np.random.default_rng(0)
    one_frame = pd.DataFrame(rng.normal(size=(500, 5)).astype(np.float32), columns=ONE)
    # skl2onnx takes several inputs through a ColumnTransformer, as its DataFrame example does.
    scale = ColumnTransformer([("n", StandardScaler(), ONE)])
    one = make_pipeline(scale, LinearRegression()).fit(one_frame, 3 * one_frame["f2"])  # f2 only
    types = [(name, FloatTensorType([None, 1])) for name in ONE]
    (root / "one.onnx").write_bytes(convert_sklearn(one, initial_types=types).SerializeToString())
    wide = _wide(root)
    _publish(store, root, "wide", wide)
    for name, train in (("wine", frame), ("one", one_frame)):
        _publish(store, root, name, train)
    # Every request flushes its drift counts, so the window holds them when monitor reads it.
    for server in start_serve(store.root, env={"AIAAS_DRIFT_FLUSH_SECONDS": "0.001"}):
        yield Frames(store, server.base, root, wine, frame)


def _wide(root: Path) -> pd.DataFrame:
    """An [N, 2] input `a` beside an [N, 1] input `b` (column indices across both, which
    skl2onnx concatenates); y = 2 a_1 + b."""
    rows = np.random.default_rng(2).normal(size=(300, 3)).astype(np.float32)
    split = ColumnTransformer([("a", StandardScaler(), [0, 1]), ("b", "passthrough", [2])])
    model = make_pipeline(split, LinearRegression()).fit(rows, 2 * rows[:, 1] + rows[:, 2])
    types = [("a", FloatTensorType([None, 2])), ("b", FloatTensorType([None, 1]))]
    (root / "wide.onnx").write_bytes(
        convert_sklearn(model, initial_types=types).SerializeToString()
    )
    return pd.DataFrame(rows, columns=WIDE)


def _publish(store: LocalStore, root: Path, name: str, train: pd.DataFrame) -> None:
    assert main(["--store", store.uri, "publish", str(root / f"{name}.onnx"), "--name", name]) == 0
    assert (
        main(["--store", store.uri, "baseline", name, str(_csv(root / f"{name}.csv", train))]) == 0
    )


def _explain(frames: Frames, name: str, body: dict[str, Any], v2: bool = False) -> Any:
    path = f"/v2/models/{name}/explain" if v2 else f"/models/{name}/explain"
    answer = httpx.post(frames.base + path, json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: v if isinstance(v, str) else float(v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def test_records_and_columns_are_explained_per_column_like_shap(frames: Frames) -> None:
    rows = frames.frame.iloc[[0, 70, 150]]
    by_records = _explain(frames, "wine", {"instances": _records(rows)})
    columns = {name: rows[name].astype(float).tolist() for name in COLUMNS}
    by_columns = _explain(frames, "wine", {"inputs": columns})
    assert by_records["features"] == COLUMNS and by_records["outputs"] == ["0", "1", "2"]
    assert by_records["parameters"]["exact"] is True  # 6 columns: all 62 coalitions
    assert [e["label"] for e in by_records["explanations"]] == ["0", "1", "2"]
    key = f"{version_prefix('wine', '1')}/{BACKGROUND_FILE}"
    background = Background.from_json(frames.store.get_bytes(key), len(COLUMNS))
    data = DenseData(background.rows, COLUMNS, None, background.weights)

    def predict_proba(x: np.ndarray) -> np.ndarray:
        return np.asarray(frames.wine.predict_proba(pd.DataFrame(x, columns=COLUMNS)))

    reference = shap.KernelExplainer(predict_proba, data)
    want = reference.shap_values(rows.to_numpy(np.float64), nsamples=62, l1_reg=False, silent=True)
    for mine, same, expected in zip(
        by_records["explanations"], by_columns["explanations"], np.asarray(want), strict=True
    ):
        values = np.asarray(mine["attributions"])
        assert values.shape == (len(COLUMNS), 3)
        np.testing.assert_allclose(values, same["attributions"], atol=1e-12)
        gap = np.asarray(mine["prediction"]) - np.asarray(mine["base_value"])
        np.testing.assert_allclose(values.sum(axis=0), gap, atol=1e-5)  # additivity
        # float32 graph against float64 scikit-learn: equal to 1e-5.
        np.testing.assert_allclose(values, expected, atol=1e-5)


def test_typed_tensors_one_per_column(frames: Frames) -> None:
    rows = frames.frame.iloc[:2]
    tensors = [
        {"name": name, "shape": [2, 1], "datatype": "FP32", "data": rows[name].tolist()}
        for name in COLUMNS
    ]
    doc = _explain(frames, "wine", {"inputs": tensors}, v2=True)
    assert doc["parameters"]["features"] == COLUMNS
    out = {t["name"]: np.reshape(t["data"], t["shape"]) for t in doc["outputs"]}
    assert out["attributions"].shape == (2, len(COLUMNS), 3)
    gap = out["prediction"] - out["base_value"]
    np.testing.assert_allclose(out["attributions"].sum(axis=1), gap, atol=1e-5)


def test_a_model_of_one_column_puts_everything_there(frames: Frames) -> None:
    """convert_sklearn with one FloatTensorType([None, 1]) a column; y = 3 * f2."""
    rows = {"f0": 1.0, "f1": -2.0, "f2": 1.5, "f3": 0.3, "f4": 4.0}
    doc = _explain(frames, "one", {"instances": [rows]})
    assert doc["features"] == ONE
    row = doc["explanations"][0]
    values = np.asarray(row["attributions"])[:, 0]
    assert abs(values[2] - (row["prediction"][0] - row["base_value"][0])) < 1e-5
    assert np.abs(np.delete(values, 2)).max() < 1e-5
    assert abs(row["prediction"][0] - 4.5) < 1e-4


def test_cli_explains_records_and_a_dataframe_csv(
    frames: Frames, capsys: pytest.CaptureFixture[str]
) -> None:
    record = json.dumps({"instances": _records(frames.frame.iloc[:1])})
    code, out = _cli(frames.store, capsys, "explain", "wine", "--inputs", record)
    assert code == 0, out
    assert out.startswith("wine:1 kernel_shap samples=62, exact=True, background_rows=10")
    assert "row 0: 0 = " in out and "alcohol" in out
    csv = _csv(frames.root / "rows.csv", frames.frame.iloc[:70])  # two requests of <= 64 rows
    jsonl = frames.root / "why.jsonl"
    code, out = _cli(
        frames.store, capsys, "explain", "wine", "--file", str(csv), "--out", str(jsonl)
    )
    assert (code, out) == (0, f"explained 70 of 70 rows of {csv} with wine:1 into {jsonl}\n")
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [line["row"] for line in lines] == list(range(70))
    assert all(line["features"] == COLUMNS for line in lines)
    first = _explain(frames, "wine", {"instances": _records(frames.frame.iloc[:1])})
    np.testing.assert_allclose(
        lines[0]["attributions"], first["explanations"][0]["attributions"], atol=1e-12
    )


def test_a_shifted_column_is_flagged_by_name(
    frames: Frames, capsys: pytest.CaptureFixture[str]
) -> None:
    """Served over HTTP as records: `aiaas monitor` and the drift job name the column."""
    rng = np.random.default_rng(1)
    live = frames.frame.sample(n=1000, replace=True, random_state=1).reset_index(drop=True)
    live["ash"] = live["ash"] + 1.0 + rng.normal(scale=0.1, size=len(live)).astype(np.float32)
    for start in range(0, len(live), 100):
        body = {"instances": _records(live.iloc[start : start + 100])}
        answer = httpx.post(f"{frames.base}/models/wine/predict", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
    time.sleep(0.01)
    code, out = _cli(frames.store, capsys, "monitor", "wine", "--window", "10m", "--no-png")
    assert code == 0, out
    table = out[out.index("wine:1: 1000 rows served") :].splitlines()
    assert table[2].startswith("ash") and table[2].endswith("DRIFT (PSI > 0.2)")
    assert not any(line.startswith(("alcohol", "magnesium")) and "DRIFT" in line for line in table)
    docs = run(frames.store, DriftSettings(window_seconds=600), time.time())
    wine = next(d for d in docs if d["model"] == "wine")
    assert wine["drifted"][0] == "ash"


def test_an_input_of_several_columns_is_one_feature_a_column(frames: Frames) -> None:
    """A linear model's exact Shapley values: coefficient x (x - background mean), per column,
    from named inputs and from typed tensors alike."""
    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.7, -0.4]])
    doc = _explain(frames, "wide", {"inputs": {"a": x[:, :2].tolist(), "b": x[:, 2].tolist()}})
    assert doc["features"] == WIDE
    key = f"{version_prefix('wide', '1')}/{BACKGROUND_FILE}"
    background = Background.from_json(frames.store.get_bytes(key), 3)
    mean = background.weights @ background.rows
    expected = np.array([0.0, 2.0, 1.0]) * (x - mean)
    got = np.array([np.asarray(e["attributions"])[:, 0] for e in doc["explanations"]])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    tensors = [
        {"name": "a", "shape": [2, 2], "datatype": "FP32", "data": x[:, :2].ravel().tolist()},
        {"name": "b", "shape": [2, 1], "datatype": "FP32", "data": x[:, 2].tolist()},
    ]
    typed = _explain(frames, "wide", {"inputs": tensors}, v2=True)
    attributions = next(t for t in typed["outputs"] if t["name"] == "attributions")
    np.testing.assert_allclose(np.reshape(attributions["data"], (2, 3)), got, atol=1e-6)


def test_a_csv_lacking_columns_is_told_which_by_name(
    frames: Frames, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not "lacks x_0, x_1, ...": a DataFrame's columns are named by its inputs."""
    path = _csv(frames.root / "short.csv", frames.frame[COLUMNS[:4]])
    code, out = _cli(frames.store, capsys, "explain", "wine", "--file", str(path))
    assert code == 1
    assert out.strip().endswith(
        f"{path}: the header lacks column(s) magnesium, total_phenols; model wine:1 reads "
        f"{', '.join(COLUMNS)} (it has {', '.join(COLUMNS[:4])})"
    )


def test_records_with_an_id_beside_the_columns_are_explained(frames: Frames) -> None:
    """A DataFrame's records with its id column (not a model input), as the same model's
    one-input export and `--file` already took them: explained, the id left aside. Refused
    before ("instances[0] has unknown input 'customer_id'")."""
    rows = _records(frames.frame.iloc[[0, 70]])
    plain = _explain(frames, "wine", {"instances": rows})
    with_id = [{"customer_id": 1000 + i, **row} for i, row in enumerate(rows)]
    assert _explain(frames, "wine", {"instances": with_id}) == plain
