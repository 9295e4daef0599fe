"""`aiaas capture export` on a store that lives for months (lifecycle hunt):

- once a captured version was pruned (the usual case: an old version served, then went), the
  export of every version failed on its manifest, saying "point the deployment at an alias";
- the export held every row in memory: 216,000 rows took 418 MB as CSV and 1.26 GB as JSONL.
"""

from __future__ import annotations

import csv
import json
import tracemalloc
from pathlib import Path

import pytest

from functions.runtime.pruning import carry_out, plan_removal
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_capture_export_cells import capture

ROW = [1.0, 2.0, 3.0, 4.0]


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    """m:1 and m:2 each answered 3 captured requests; m:1 then pruned (production -> 2)."""
    registry = Registry(LocalStore(tmp_path / "store"))
    for version in ("1", "2", "3"):
        path = onnx_factory.linear_classifier(tmp_path / f"{version}.onnx", seed=int(version))
        registry.publish(onnx_factory.manifest_for(path, "m", version), path)
    for version in ("1", "2"):
        registry.set_alias("m", "production", version)
        capture(registry, tmp_path / version, "m", [{"inputs": [ROW]}] * 3)
    registry.set_alias("m", "production", "3")
    registry.set_alias("m", "production", "2")  # 3 is the rollback target: 1 may go
    carry_out(registry, plan_removal(registry, "m", "1"), "ops")
    return registry


def export(registry: Registry, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["--store", registry.store.uri, "capture", "export", "m", *argv])
    out, err = capsys.readouterr()
    return code, out + err


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_the_lines_of_a_pruned_version_are_skipped_and_said(
    registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    out = tmp_path / f"m.{suffix}"
    code, said = export(registry, capsys, "--out", str(out))
    assert code == 0, said
    assert "3 captured lines of pruned version(s) 1 not exported: their manifests" in said
    assert f"3 rows of m written to {out}" in said
    text = out.read_text()
    rows = (
        list(csv.DictReader(text.splitlines()))
        if suffix == "csv"
        else [json.loads(line) for line in text.splitlines()]
    )
    assert [row["version"] for row in rows] == ["2"] * 3
    code, said = export(registry, capsys, "--version", "1", "--out", str(out))
    assert code == 1
    assert "version 1 of m was pruned: its captured lines have no manifest left" in said


def test_an_export_is_written_as_it_is_read_not_held_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = Registry(LocalStore(tmp_path / "store"))
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    registry.publish(onnx_factory.manifest_for(path, "m", "1"), path)
    capture(registry, tmp_path, "m", [{"inputs": [ROW] * 500}] * 10)  # 5,000 rows
    for suffix in ("csv", "jsonl"):
        tracemalloc.start()
        code, said = export(registry, capsys, "--out", str(tmp_path / f"m.{suffix}"))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert code == 0 and "5000 rows of m written" in said, said
        # Held whole, 5,000 rows were ~1.7 KB each as CSV rows (8.5 MB), 5.6 KB as JSONL.
        assert peak < 4 * 2**20, f"{suffix}: {peak / 2**20:.1f} MiB at peak"
