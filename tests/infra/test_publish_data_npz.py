"""`aiaas publish --data FILE.npz`: the labels are found as in a CSV or JSONL (docs/registry.md: "the true
class or value in COLUMN, default `label`, else `target`, else `y`"); an NPZ used to take only
`y`, so the documented `--data test.npz` with a `label` array was refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from functions.runtime.errors import BadRequest
from functions.runtime.manifest import ModelManifest
from infra.cli.publish_data import read_data
from tests.onnx_factory import identity, manifest_for

ROWS = np.arange(12, dtype=np.float32).reshape(4, 3)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> ModelManifest:
    return manifest_for(identity(tmp_path_factory.mktemp("m") / "m.onnx", shape=["N", 3]), "m", "1")


@pytest.mark.parametrize("column", ["label", "target", "y"])
def test_an_npz_s_labels_default_as_a_table_s(
    column: str, manifest: ModelManifest, tmp_path: Path
) -> None:
    path = tmp_path / "test.npz"
    np.savez(path, x=ROWS, **{column: np.array([0, 1, 0, 1])})
    data = read_data(path, manifest)
    assert (data.column, data.labels) == (column, [0, 1, 0, 1])
    assert np.array_equal(data.inputs["x"], ROWS)


def test_target_names_the_npz_array_and_a_missing_one_lists_those_there(
    manifest: ModelManifest,
    tmp_path: Path,
) -> None:
    path = tmp_path / "test.npz"
    np.savez(path, x=ROWS, label=np.zeros(4), cultivar=np.ones(4))
    assert read_data(path, manifest, "cultivar").labels == [1.0] * 4
    with pytest.raises(BadRequest, match=r"no label array 'kind'.*\['cultivar', 'label', 'x'\]"):
        read_data(path, manifest, "kind")
    np.savez(path, x=ROWS)
    with pytest.raises(BadRequest, match=r"--target.*'label', 'target', 'y'.*\['x'\]"):
        read_data(path, manifest)
