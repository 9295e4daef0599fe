"""The memory-fit check: a published model that cannot fit its function is refused, with the
numbers, by `python -m infra.model_fit` and `python -m infra.model_resources --store`."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from bench.synthetic_transformer import SyntheticShape, write_model
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.model_fit import RUNTIME_MB, model_fit
from tests import onnx_factory

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = """\
Metadata:
  Models:
    big-text:
      MemorySize: {memory}
    not-yet:
Resources: {{}}
"""


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """big-text:1 (a ~40 MB external-data model) @production in a directory store."""
    root = tmp_path_factory.mktemp("fit")
    path = root / "export" / "model.onnx"
    write_model(path, SyntheticShape.of_bytes(40_000_000, width=128), external=True)
    registry = Registry(LocalStore(root / "store"))
    registry.publish(onnx_factory.manifest_for(path, "big-text", "1"), path)
    registry.set_alias("big-text", "production", "1")
    return root / "store"


def run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=REPO, timeout=60
    )


def test_fit_counts_where_the_weights_land(published: Path) -> None:
    manifest = Registry(LocalStore(published)).manifest("big-text", "1")
    weights_mb = manifest.weight_bytes / 2**20
    on_disk = model_fit(manifest, 1024)
    assert on_disk.loads_from == "external-disk" and on_disk.fits
    assert on_disk.need_mb == round(RUNTIME_MB + weights_mb * 1.2)
    in_memory = model_fit(manifest, 1024, tmp_mb=32)  # /tmp too small: loaded from memory
    assert in_memory.loads_from == "memory"
    assert in_memory.need_mb == round(RUNTIME_MB + weights_mb * 3.1)


def test_a_big_single_file_counts_its_weights_mapped(published: Path) -> None:
    external = Registry(LocalStore(published)).manifest("big-text", "1")
    for size, where, copies in (
        (80 * 2**20, "mapped-single-disk", 1.2),
        (2**20, "single-disk", 2.1),
    ):
        single = replace(external, files=(), file=replace(external.file, size=size))
        fit = model_fit(single, 1024)
        assert fit.loads_from == where
        assert fit.need_mb == round(RUNTIME_MB + size / 2**20 * copies)


def test_a_model_too_big_for_its_memory_is_refused(published: Path, tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE.format(memory=128))
    found = run("infra.model_fit", "--store", str(published), "--template", str(template))
    assert found.returncode == 1, found.stdout
    assert "not-yet@production: not published yet, not checked" in found.stdout
    assert "big-text:1 needs ~" in found.stdout
    assert "but its function has 128 MB with 10% headroom: raise MemorySize to 256" in found.stdout
    resources = run(
        "infra.model_resources", "--check", "--template", str(template), "--store", str(published)
    )
    assert resources.returncode == 1
    assert "big-text:1 needs ~" in resources.stderr


def test_a_model_that_fits_passes(published: Path, tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE.format(memory=1024))
    found = run("infra.model_fit", "--store", str(published), "--template", str(template))
    assert found.returncode == 0, found.stdout
    assert "big-text:1: fits (" in found.stdout and "of 1024 MB)" in found.stdout
