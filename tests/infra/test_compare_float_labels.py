"""`aiaas compare --data` of a CSV whose labels pandas wrote as floats (`1.0`: an int column with
a gap, or any column that went through float arithmetic) against classes named 1, 2, 3.

A JSON 1.0 was class 1, but a CSV cell is the text "1.0": every row was a class neither version
was trained on (accuracy 0), or, in a file without the last class, `1.0` and `2.0` were read as
class indices (the second and third classes) and compare reported accuracy 0.03 where `publish
--data` scored the same file 0.97. hunt_datafiles 2. Real parts: a skl2onnx LogisticRegression
with integer classes, published twice, and the CLI's compare and publish --data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.cli_run import run

FEATURES = "sl,sw,pl,pw"


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray, Path]:
    """(store with versions 1 and 2 of `iris`, the rows, their classes 1-3, the ONNX file)."""
    root = tmp_path_factory.mktemp("float-labels")
    x, codes = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    fitted = LogisticRegression(max_iter=500).fit(x, codes + 1)
    model = root / "iris.onnx"
    model.write_bytes(to_onnx(fitted, x[:1], options={"zipmap": False}).SerializeToString())
    store = LocalStore(root / "store")
    for _ in range(2):
        code, _, err = run(store, "publish", str(model), "--name", "iris", "--features", FEATURES)
        assert code == 0, err
    return root / "store", x, fitted.predict(x), model


def _csv(path: Path, x: np.ndarray, labels: list[str]) -> Path:
    rows = [",".join(f"{v:g}" for v in row) + f",{y}" for row, y in zip(x, labels, strict=True)]
    path.write_text("\n".join([f"{FEATURES},y", *rows]) + "\n")
    return path


@pytest.mark.parametrize("rows", [150, 100])  # 100: classes 1 and 2 only
def test_float_labels_are_the_classes_they_write(
    tmp_path: Path, iris: tuple[Path, np.ndarray, np.ndarray, Path], rows: int
) -> None:
    root, x, predicted, model = iris
    truth = np.repeat([1, 2, 3], 50)[:rows]
    expected = float(np.mean(predicted[:rows] == truth))
    data = _csv(tmp_path / "held-out.csv", x[:rows], [f"{y:.1f}" for y in truth])
    store = LocalStore(root)
    code, out, err = run(store, "compare", "iris", "1", "2", "--data", str(data), "--json")
    assert code == 0, err
    metrics = json.loads(out)["metrics"]
    assert metrics["rows"] == rows and metrics["unknown_labels"] == {}, metrics
    for side in ("a", "b"):
        assert metrics[side]["accuracy"] == pytest.approx(expected), metrics
    # publish --data scores the same file alike (it read 1.0 as class 1 already)
    argv = ("publish", str(model), "--name", f"card{rows}", "--features", FEATURES)
    code, _, err = run(store, *argv, "--data", str(data), "--target", "y")
    assert code == 0, err
    held_out = Registry(store).manifest(f"card{rows}", "1").metrics["held_out"]
    assert held_out["accuracy"] == pytest.approx(expected)


def test_a_class_named_with_a_point_stays_itself(
    tmp_path: Path, iris: tuple[Path, np.ndarray, np.ndarray, Path]
) -> None:
    """`2.5` is no whole number: a class none of the versions has, counted as such."""
    root, x, _, _ = iris
    data = _csv(tmp_path / "odd.csv", x[:3], ["1.0", "2.5", "1"])
    code, out, err = run(LocalStore(root), "compare", "iris", "1", "2", "--data", str(data))
    assert code == 0, err
    assert "1 of 3 labelled rows hold a class neither version was trained on ('2.5': 1)" in out
