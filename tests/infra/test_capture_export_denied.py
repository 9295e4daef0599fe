"""A numeric field denied at capture (`aiaas capture MODEL --deny income`) is an empty cell in
every row of the export; re-scoring the export with `aiaas batch` refused each row saying to
publish with `--allow-nonfinite`, as if the requests had sent a missing value. It now says the
file is a capture export, which writes a field denied at capture empty. Real predict handler,
real capture, the real CLI."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest

from functions.runtime.capture.setting import set_capture
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_capture_export_cells import FEATURES, ROWS, capture


def denied_export(tmp_path: Path) -> Path:
    """`churn` published and captured with `income` denied, its capture exported to a CSV."""
    registry = Registry(LocalStore(tmp_path / "store"))
    path = onnx_factory.linear_classifier(tmp_path / "churn.onnx", seed=1)
    manifest = onnx_factory.manifest_for(path, "churn", "1", labels=("stay", "go", "maybe"))
    registry.publish(dataclasses.replace(manifest, features=FEATURES), path)
    set_capture(registry, "churn", sample=1.0, deny=["income"], actor="test")
    bodies = [{"instances": [dict(zip(FEATURES, row, strict=True))]} for row in ROWS]
    capture(registry, tmp_path, "churn", bodies)
    out = tmp_path / "churn.csv"
    argv = ["--store", str(tmp_path / "store")]
    assert main([*argv, "capture", "export", "churn", "--out", str(out)]) == 0
    return out


def test_a_field_denied_at_capture_is_named_so_when_the_export_is_scored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = denied_export(tmp_path)
    argv = ["--store", str(tmp_path / "store")]
    with out.open(newline="") as handle:
        assert [row["income"] for row in csv.DictReader(handle)] == ["", "", ""]
    capsys.readouterr()
    assert main([*argv, "batch", "churn", str(out)]) != 0  # no row can be scored
    errors = tmp_path / "store" / "batch" / "churn" / "output" / "churn.csv.errors.jsonl"
    reasons = [json.loads(line)["error"] for line in errors.read_text().splitlines()]
    assert len(reasons) == 3, reasons
    for reason in reasons:
        assert reason.startswith("column 'income' is an empty cell: this file is a capture "), (
            reason
        )
        assert "denied at capture (`aiaas capture MODEL --deny`)" in reason
        assert "--allow-nonfinite" not in reason
