"""Features and targets in small units (metres, mol: a spread of 1e-7) train and serve as well as
in large ones: they were left unscaled (a fixed 1e-6 floor), a target's offset near zero
vanished from the export, and the parity gate allowed 500 target stds for such a target."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.training.conftest import tiny_spec, write_csv

torch = pytest.importorskip("torch", reason="training needs torch: pip install 'aiaas[training]'")

from training.errors import ExportError  # noqa: E402  (after the skip: these import torch)
from training.export import check_parity, export_onnx, run_onnx  # noqa: E402
from training.prepare import PreparedData, Split  # noqa: E402
from training.recipes.layers import ScalarOutput, Standardize  # noqa: E402
from training.spec import ExportSpec  # noqa: E402


def _table(tmp_path: Path, name: str, unit: float, target_unit: float = 1.0) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(300):
        a, b = rng.normal(size=2)
        rows.append([a * unit, b, (a + 2 * b) * target_unit if target_unit != 1.0 else int(a > 0)])
    return write_csv(tmp_path / f"{name}.csv", ["a", "b", "y"], rows)


def test_a_feature_in_small_units_is_scaled_like_any_other() -> None:
    layer = Standardize(torch.tensor([0.0, 5.0, 3.0]), torch.tensor([1e-7, 0.0, 1e-9]))
    # 1e-7 around 0: a real spread; 0: constant; 1e-9 around 3: below float32's resolution of 3.
    assert layer.std.tolist() == pytest.approx([1e-7, 1.0, 1.0], rel=1e-6)


def test_classifier_accuracy_does_not_depend_on_the_unit(
    tmp_path: Path, run_tiny: Callable[..., Any]
) -> None:
    metrics = {}
    for unit in (1.0, 1e-7):
        path = _table(tmp_path, f"u{unit}", unit)
        spec = tiny_spec(
            "logistic", name=f"u-{len(metrics)}", epochs=20, learning_rate=0.05,
            dataset={"path": str(path), "target": "y"},
            # the feature's scaling is the point, not dynamo's export (tested below, on the
            # head whose offset it lost): the documented, faster TorchScript exporter
            export={"exporter": "torchscript"},
        )  # fmt: skip
        metrics[unit] = run_tiny(spec).manifest.metrics["test"]["accuracy"]
    assert metrics[1e-7] == metrics[1.0] > 0.9  # it was 0.53 at 1e-7: the feature ignored


def test_a_target_offset_near_zero_survives_the_export(tmp_path: Path) -> None:
    head = ScalarOutput(8.4e-9, 2.2e-7).eval()  # what a target of std 2e-7 gives
    x = np.zeros((3, 1), np.float32)
    split = Split(x, np.zeros(3, np.float32))
    data = PreparedData("regression", split, split, split, (1,))
    path = export_onnx(head, data, ExportSpec(), tmp_path / "head.onnx")
    np.testing.assert_allclose(run_onnx(path, x), [8.4e-9] * 3, rtol=1e-5)


def test_a_small_target_is_held_to_its_own_std(tmp_path: Path) -> None:
    """A head whose offset the export lost by 8e-9 fails parity for a target of std 2e-7."""
    x = np.random.default_rng(0).normal(size=(20, 1)).astype(np.float32)
    split = Split(x, np.zeros(20, np.float32))
    data = PreparedData("regression", split, split, split, (1,))
    lost = export_onnx(ScalarOutput(0.0, 2.2e-7), data, ExportSpec(), tmp_path / "lost.onnx")
    with pytest.raises(ExportError, match=r"x target std 2\.2e-07 = 2\.2e-11"):
        check_parity(ScalarOutput(8.4e-9, 2.2e-7).eval(), lost, x, ExportSpec(), scale=2.2e-7)
    # Large values: never below float32's own steps at their size (mean 1,000, std 0.001).
    same = export_onnx(ScalarOutput(1000.0, 1e-3), data, ExportSpec(), tmp_path / "same.onnx")
    parity = check_parity(ScalarOutput(1000.0, 1e-3).eval(), same, x, ExportSpec(), scale=1e-3)
    assert parity["allowed"] >= 4 * np.spacing(np.float32(1000.0))


def test_a_small_unit_regressor_serves_its_own_predictions(
    tmp_path: Path, run_tiny: Callable[..., Any]
) -> None:
    path = _table(tmp_path, "t", 1.0, target_unit=1e-7)
    spec = tiny_spec(
        "linear", name="t-small", task="regression", epochs=30, learning_rate=0.05,
        dataset={"path": str(path), "target": "y"},
    )  # fmt: skip
    manifest = run_tiny(spec).manifest
    assert manifest.metrics["test"]["r2"] > 0.99999  # from onnxruntime: 0.998 with the offset lost
    assert manifest.extras["parity"]["allowed"] < 1e-10
