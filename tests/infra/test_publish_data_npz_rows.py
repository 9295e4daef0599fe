"""`aiaas publish --data FILE.npz`: rows are paired with their labels by position. Past
100,000 rows only the labels were cut (a traceback), and an `x` and `y` of different lengths
were a traceback or a misleading 'empty batch'. The real CLI on a real ONNX classifier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory


def publish(tmp_path: Path, x: np.ndarray, y: np.ndarray) -> tuple[int, LocalStore]:
    store = LocalStore(tmp_path / "store")
    model = onnx_factory.linear_classifier(tmp_path / "iris.onnx")
    np.savez(tmp_path / "data.npz", x=x, y=y)
    argv = ["--store", store.uri, "publish", str(model), "--name", "iris", "--labels", "0,1,2"]
    return main([*argv, "--data", str(tmp_path / "data.npz")]), store


def test_more_rows_than_the_limit_are_evaluated_on_the_first_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100_005, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=len(x))
    code, store = publish(tmp_path, x, y)
    assert code == 0, capsys.readouterr().err
    metrics = Registry(store).manifest("iris", "1").metrics
    held_out = (metrics or {})["held_out"]
    assert held_out["rows"] == 100_000 and held_out["target"] == "y", held_out
    # The first 100,000 rows, each paired with its own label.
    assert sum(map(sum, held_out["confusion_matrix"])) == 100_000


@pytest.mark.parametrize(("x_rows", "y_rows"), [(12, 10), (10, 12)])
def test_inputs_and_labels_of_other_lengths_are_refused_naming_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], x_rows: int, y_rows: int
) -> None:
    x = np.ones((x_rows, 4), np.float32)
    code, store = publish(tmp_path, x, np.zeros(y_rows, np.int64))
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert (
        f"the input array 'x' has {x_rows} rows and the label array 'y' {y_rows}; each row "
        "needs its label" in err
    )
    assert list(store.list_keys("models")) == []  # nothing published
