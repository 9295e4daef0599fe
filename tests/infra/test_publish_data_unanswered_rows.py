"""`aiaas publish --data` of a classifier published `--allow-nonfinite`: the rows it answers NaN
for (a gap it cannot score) are left out of the card's metrics and counted, as the predict API
refuses them (a 422) and `aiaas compare` leaves them out.

They were scored as the argmax of NaN, the first class: on iris with `sw` missing in every 9th
row, a card said "Scored as the predict API answers, on 150 rows: accuracy=0.9", 17 of those
rows ones the API refuses (6 setosa rows among them counted right by luck), where compare said
0.9699 on 133 rows. hunt_datafiles 4. Real parts: a skl2onnx LogisticRegression (NaN in, NaN
probabilities out) and the CLI's publish and compare.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.cli_run import run

FEATURES = "sl,sw,pl,pw"
CLASSES = np.array(["setosa", "versicolor", "virginica"])


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray, Any]:
    root = tmp_path_factory.mktemp("unanswered")
    x, codes = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    fitted = LogisticRegression(max_iter=500).fit(x, CLASSES[codes])
    model = root / "iris.onnx"
    model.write_bytes(to_onnx(fitted, x[:1], options={"zipmap": False}).SerializeToString())
    return model, x, CLASSES[codes], fitted


def _csv(path: Path, x: np.ndarray, y: np.ndarray) -> Path:
    cells = [["" if np.isnan(v) else f"{v:g}" for v in row] for row in x]
    rows = [",".join(row) + f",{label}" for row, label in zip(cells, y, strict=True)]
    path.write_text("\n".join([f"{FEATURES},y", *rows]) + "\n")
    return path


def test_rows_answered_nan_are_left_out_and_counted(
    tmp_path: Path, iris: tuple[Path, np.ndarray, np.ndarray, Any]
) -> None:
    model, x, y, fitted = iris
    gappy = x.copy()
    gappy[::9, 1] = np.nan  # 17 rows, 6 of them setosa: the first class
    data = _csv(tmp_path / "held-out.csv", gappy, y)
    complete = ~np.isnan(gappy).any(axis=1)
    expected = float(np.mean(fitted.predict(x[complete]) == y[complete]))
    store = LocalStore(tmp_path / "store")
    argv = ("publish", str(model), "--name", "iris", "--features", FEATURES, "--allow-nonfinite")
    code, out, err = run(store, *argv, "--data", str(data), "--target", "y")
    assert code == 0, err
    held_out = Registry(store).manifest("iris", "1").metrics["held_out"]
    assert held_out["rows"] == 133 and held_out["rows_not_finite"] == 17, held_out
    assert held_out["accuracy"] == pytest.approx(expected)
    assert sum(map(sum, held_out["confusion_matrix"])) == 133
    assert "on 133 rows of held-out.csv; 17 more left out: a NaN or infinite answer" in out, out
    card = store.get_bytes("models/iris/versions/1/card/card.md").decode()
    assert "17 rows had a non-finite prediction or label and are left out." in card
    # compare (which leaves them out too) scores the same file alike
    code, _, err = run(store, *argv, "--version", "2")
    assert code == 0, err
    code, out, err = run(store, "compare", "iris", "1", "2", "--data", str(data), "--json")
    assert code == 0, err
    metrics = json.loads(out)["metrics"]
    assert metrics["rows"] == 133 and metrics["a"]["accuracy"] == pytest.approx(expected)


def test_a_file_the_model_answers_no_row_of_is_refused(
    tmp_path: Path, iris: tuple[Path, np.ndarray, np.ndarray, Any]
) -> None:
    model, x, y, _ = iris
    gappy = x[:20].copy()
    gappy[:, 0] = np.nan
    data = _csv(tmp_path / "gaps.csv", gappy, y[:20])
    store = LocalStore(tmp_path / "store")
    argv = ("publish", str(model), "--name", "iris", "--features", FEATURES, "--allow-nonfinite")
    code, _, err = run(store, *argv, "--data", str(data), "--target", "y")
    assert code == 1, err
    assert f"--data {data}: the model answered NaN or infinity for every row" in err, err
    assert Registry(store).versions("iris", missing_ok=True) == []
