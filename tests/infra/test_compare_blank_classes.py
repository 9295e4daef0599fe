"""`aiaas compare --data` of a model whose classes are written with a blank (` setosa`).

A scikit-learn model fit on `pd.read_csv` of `5.1, 3.5, 1.4, 0.2, setosa` has the classes
' setosa', ...: compare stripped every label of its own held-out file to 'setosa' and counted
each row as a class neither version was trained on (accuracy 0), where `publish --data`
matches a label as written first (review_revinfra 4). A label with blanks that is no class as
written is still the class less its blanks (tests/infra/test_compare_class_names.py). Real parts: a skl2onnx export with default options
(ZipMap), published twice, and the CLI's compare on a CSV and a JSONL file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from functions.runtime.store import LocalStore
from tests.cli_run import run

FEATURES = "sl,sw,pl,pw"
CLASSES = np.array(["setosa", "versicolor", "virginica"])


@pytest.fixture(scope="module")
def blank(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStore, np.ndarray, float]:
    """(store with versions 1 and 2 of `blank`, the rows, sklearn's own accuracy)."""
    root = tmp_path_factory.mktemp("blank-classes")
    x, codes = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    y = np.char.add(" ", CLASSES)[codes]
    fitted = LogisticRegression(max_iter=500).fit(x, y)
    model = root / "blank.onnx"
    model.write_bytes(to_onnx(fitted, x[:1]).SerializeToString())  # default options: ZipMap
    store = LocalStore(root / "store")
    for _ in range(2):
        code, _, err = run(store, "publish", str(model), "--name", "blank", "--features", FEATURES)
        assert code == 0, err
    return store, x, float(fitted.score(x, y))


def _held_csv(tmp_path: Path, x: np.ndarray, labels: list[str]) -> Path:
    """The rows as `pd.read_csv` reads `5.1, 3.5, 1.4, 0.2, setosa`: a blank after each comma."""
    rows = [", ".join(f"{v:g}" for v in row) + f", {y}" for row, y in zip(x, labels, strict=True)]
    data = tmp_path / "held.csv"
    data.write_text("\n".join([f"{FEATURES},y", *rows]) + "\n")
    return data


def _compare(store: LocalStore, data: Path) -> dict[str, object]:
    code, out, err = run(store, "compare", "blank", "1", "2", "--data", str(data), "--json")
    assert code == 0, err
    metrics: dict[str, object] = json.loads(out)["metrics"]
    return metrics


def test_csv_labels_written_as_the_classes_are_them(
    tmp_path: Path, blank: tuple[LocalStore, np.ndarray, float]
) -> None:
    store, x, accuracy = blank
    codes = np.repeat([0, 1, 2], 50)
    data = _held_csv(tmp_path, x, list(CLASSES[codes]))
    metrics = _compare(store, data)
    assert metrics["unknown_labels"] == {}, metrics
    for side in ("a", "b"):
        assert metrics[side]["accuracy"] == pytest.approx(accuracy), metrics  # type: ignore[index]


def test_jsonl_labels_written_as_the_classes_are_them(
    tmp_path: Path, blank: tuple[LocalStore, np.ndarray, float]
) -> None:
    """A JSON label was never stripped: kept so."""
    store, x, accuracy = blank
    codes = np.repeat([0, 1, 2], 50)
    lines = [
        json.dumps(
            {**dict(zip(FEATURES.split(","), map(float, row), strict=True)), "y": f" {CLASSES[c]}"}
        )
        for row, c in zip(x, codes, strict=True)
    ]
    data = tmp_path / "held.jsonl"
    data.write_text("\n".join(lines) + "\n")
    metrics = _compare(store, data)
    assert metrics["unknown_labels"] == {}, metrics
    assert metrics["a"]["accuracy"] == pytest.approx(accuracy), metrics  # type: ignore[index]


def test_csv_labels_with_blanks_are_classes_without(tmp_path: Path) -> None:
    """The other way round, as training reads a label: ` setosa` is class `setosa`."""
    x, codes = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    fitted = LogisticRegression(max_iter=500).fit(x, CLASSES[codes])
    model = tmp_path / "plain.onnx"
    model.write_bytes(to_onnx(fitted, x[:1]).SerializeToString())
    store = LocalStore(tmp_path / "store")
    for _ in range(2):
        code, _, err = run(store, "publish", str(model), "--name", "blank", "--features", FEATURES)
        assert code == 0, err
    data = _held_csv(tmp_path, x, [f"{c} " for c in CLASSES[codes]])
    metrics = _compare(store, data)
    assert metrics["unknown_labels"] == {}, metrics
    score = fitted.score(x, CLASSES[codes])
    assert metrics["a"]["accuracy"] == pytest.approx(score), metrics  # type: ignore[index]


def test_versions_matched_by_class_index_read_labels_as_written_too(
    tmp_path: Path, blank: tuple[LocalStore, np.ndarray, float]
) -> None:
    """review_revsess 2: B renamed its classes (`Iris-setosa`, ...), so the versions are matched
    by class index; that path read the truth with no classes, stripping ` setosa` to `setosa`,
    no class of A's: every row unknown, accuracy 0 for both."""
    store, x, accuracy = blank
    codes = np.repeat([0, 1, 2], 50)
    renamed = np.char.add("Iris-", CLASSES)[codes]
    fitted = LogisticRegression(max_iter=500).fit(x, renamed)
    model = tmp_path / "renamed.onnx"
    model.write_bytes(to_onnx(fitted, x[:1]).SerializeToString())
    argv = ("publish", str(model), "--name", "blank", "--features", FEATURES)
    assert run(store, *argv)[0] == 0  # version 3
    data = _held_csv(tmp_path, x, list(CLASSES[codes]))
    code, out, err = run(store, "compare", "blank", "1", "3", "--data", str(data), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["agreement"]["by"] == "class index", doc
    metrics = doc["metrics"]
    assert metrics["unknown_labels"] == {}, metrics
    assert metrics["a"]["accuracy"] == pytest.approx(accuracy), metrics
    assert metrics["b"]["accuracy"] == pytest.approx(fitted.score(x, renamed)), metrics
