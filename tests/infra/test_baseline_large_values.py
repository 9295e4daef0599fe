"""`aiaas baseline` on finite values whose squares overflow (1e155 and up): k-means' distances
were inf, inf/inf a NaN probability, and the command a `ValueError: Probabilities contain NaN`
traceback. The real CLI on real ONNX models and a real store."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto

from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_cli_explain import FEATURES, cli, store, write_csv

__all__ = ["store"]  # the fixture: a float32 linear classifier published as iris:1


def _rows(scale: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(300, 4))
    rows[:, 3] = rng.uniform(-1, 1, len(rows)) * scale  # up to 1.7e308: the largest float
    return rows


def _float64_model(tmp_path: Path) -> LocalStore:
    """A store holding `big:1`: a float64 [N, 4] identity, published by the CLI."""
    store = LocalStore(tmp_path / "store")
    model = onnx_factory.identity(tmp_path / "big.onnx", TensorProto.DOUBLE, ["N", 4])
    argv = ["--store", store.uri, "publish", str(model), "--name", "big", "--features", FEATURES]
    assert main(argv) == 0
    return store


def test_a_float64_model_gets_a_finite_background_and_baseline_of_huge_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _float64_model(tmp_path)
    rows = _rows(1.7e308)
    data = write_csv(tmp_path / "train.csv", rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # an overflow on the way: a failure
        code, out, err = cli(store, capsys, "baseline", "big", str(data))
    assert code == 0 and "background = k-means (10 centres) of 300 rows" in out, err
    prefix = version_prefix("big", "1")
    background = json.loads(store.get_bytes(f"{prefix}/background.json"))
    centres = np.array(background["rows"])
    assert np.isfinite(centres).all() and centres.shape == (10, 4)
    # Each centre's mean of its own rows: within the column's range, not scaled away.
    assert rows[:, 3].min() <= centres[:, 3].min() < centres[:, 3].max() <= rows[:, 3].max()
    assert np.abs(centres[:, 3]).max() > 1e307
    edges = json.loads(store.get_bytes(f"{prefix}/drift_baseline.json"))["edges"][3]
    assert len(edges) == 9 and all(abs(e) > 1e305 for e in edges)


def test_one_huge_column_leaves_the_others_their_own_centres(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every fifth row's 1e200 scaled all columns by one factor: the ordinary ones became 1e-200,
    # their distances 0, and the background 2 centres (every ordinary row one point).
    store = _float64_model(tmp_path)
    rows = np.random.default_rng(0).normal(size=(300, 4))
    rows[::5, 3] = 1e200
    code, out, err = cli(store, capsys, "baseline", "big", str(write_csv(tmp_path / "t.csv", rows)))
    assert code == 0 and "background = k-means (10 centres) of 300 rows" in out, err
    background = json.loads(store.get_bytes(f"{version_prefix('big', '1')}/background.json"))
    centres = np.array(background["rows"])
    assert len(np.unique(centres[:, 0])) == 10  # an ordinary column keeps its spread
    assert np.isclose(sum(background["weights"]), 1.0)


def test_a_float32_model_refuses_values_it_cannot_hold_naming_the_column(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_csv(tmp_path / "train.csv", _rows(1e300))
    code, out, err = cli(store, capsys, "baseline", "iris", str(data))
    assert (code, out) == (1, "") and err.count("\n") == 1 and "Traceback" not in err, err
    assert "column 'petal_width' holds " in err and "float32 input 'x'" in err, err
    assert not list(store.list_keys(f"{version_prefix('iris', '1')}/background"))
