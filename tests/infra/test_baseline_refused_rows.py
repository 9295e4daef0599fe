"""`aiaas baseline` refuses training rows the model cannot be served, before writing anything:
a background and a drift baseline are written once (versions are immutable), so rows stored
wrong left a version that could never be monitored or explained again. The real CLI on real
ONNX models and a real store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_cli_explain import FEATURES


def _baseline(store: LocalStore, name: str, data: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """`aiaas baseline` refused: its one-line error, once nothing was written."""
    capsys.readouterr()
    assert main(["--store", store.uri, "baseline", name, str(data)]) == 1
    err = capsys.readouterr().err.strip()
    for kept in ("background.json", "drift_baseline.json"):
        assert not store.exists(f"models/{name}/versions/1/{kept}"), err
    assert "\n" not in err
    return err


@pytest.mark.parametrize("features", [False, True])
def test_an_npy_of_the_wrong_width_is_refused_naming_the_file_and_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], features: bool
) -> None:
    # Without --features a [N, 5] array for a [N, 4] input was stored: five features binned,
    # its values regrouped into rows of 4 and predicted, then neither monitor nor explain could
    # use the version, and the right file was refused as the baseline already written. With
    # --features it was "4 feature names for rows of 5 values", naming neither file nor model.
    store = LocalStore(tmp_path / "store")
    model = onnx_factory.linear_classifier(tmp_path / "clf.onnx")
    named = ["--features", FEATURES] if features else []
    argv = ["--store", store.uri, "publish", str(model), "--name", "clf", "--labels", "a,b,c"]
    assert main([*argv, *named]) == 0
    rows = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    np.save(tmp_path / "train5.npy", np.hstack([rows, rows[:, :1]]))
    err = _baseline(store, "clf", tmp_path / "train5.npy", capsys)
    names = ": " + FEATURES.replace(",", ", ") if features else ""
    assert err == (
        f"aiaas baseline: error: {tmp_path / 'train5.npy'}: array shape [50, 5] holds rows of 5 "
        f"values; clf:1's input 'x' reads 4 a row ([N, 4]){names}"
    )
    np.save(tmp_path / "column.npy", rows[:, 0])  # one column: rows of 1 value
    assert "array shape [50] holds rows of 1 value;" in _baseline(
        store, "clf", tmp_path / "column.npy", capsys
    )
    np.save(tmp_path / "train.npy", rows)
    assert main(["--store", store.uri, "baseline", "clf", str(tmp_path / "train.npy")]) == 0
    assert "drift baseline = 50 rows" in capsys.readouterr().out
