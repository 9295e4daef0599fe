"""Spec settings a job used to drop or take wrongly, now refused at `aiaas train --check` with
the field to fix (training spec hunt): each a real spec and data file through the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.training.test_check import _error, _spec

IRIS = {"path": "bundled:iris.csv", "target": "species"}


def npz(tmp_path: Path) -> str:
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(60, 2)).astype(np.float32)
    noise = rng.normal(size=(60, 2)).astype(np.float32)
    np.savez(tmp_path / "two.npz", noise=noise, signal=signal, y=(signal.sum(axis=1) > 0) * 1)
    return "two.npz"


@pytest.mark.parametrize(
    ("dataset", "said"),
    [
        (  # only `noise` was read: test accuracy 0.544 where `signal` alone gives 1.0
            {"features": ["noise", "signal"]},
            "spec field 'dataset.features': an .npz data set reads one feature array, and this "
            "names 2 (noise, signal): save them as one (np.savez(..., "
            "x=np.concatenate([a, b], axis=1))) and name it",
        ),
        (  # `y` is the target by default: it passed as a feature
            {"features": ["signal", "y"]},
            "spec field 'dataset.features' lists 'y', the target array of two.npz: a model "
            "cannot read its own label when predicting; take it out",
        ),
        (  # was "not UTF-8 text; save the file as UTF-8"
            {"format": "csv"},
            "two.npz is an .npz (zip) file, not CSV text: set spec field 'dataset.format' to "
            "npz, or leave it out (auto)",
        ),
    ],
    ids=["two-arrays", "target-as-feature", "npz-as-csv"],
)
def test_an_npz_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dataset: dict[str, Any], said: str
) -> None:
    spec = _spec(tmp_path, {"path": npz(tmp_path), **dataset})
    assert _error(tmp_path, spec, capsys) == said


@pytest.mark.parametrize(
    ("dataset", "top", "said"),
    [
        (  # the card said "target wave_kind"; the model's label is the generator's `y`
            {"path": "generated:waveforms", "target": "wave_kind"},
            {},
            "spec field 'dataset.target' does not apply to generated:waveforms: a generated "
            "data set makes its own features and target; take it out",
        ),
        (  # the manifest's feature names came out empty, so records could not name them
            {**IRIS, "features": ["sepal_length", "sepal_length", "petal_width"]},
            {},
            "spec field 'dataset.features' names 'sepal_length' twice",
        ),
        (  # passed --check, then a 36-line traceback from numpy
            IRIS,
            {"seed": 2**32},
            "spec field 'seed' must be <= 4294967295; got 4294967296",
        ),
        (
            IRIS,
            {"version": 3},
            "spec field 'version' must be a string; got 3: YAML reads it unquoted as a number; "
            "quote it",
        ),
    ],
    ids=["generated-target", "feature-twice", "seed-past-numpy", "version-number"],
)
def test_a_spec(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    dataset: dict[str, Any],
    top: dict[str, Any],
    said: str,
) -> None:
    assert _error(tmp_path, _spec(tmp_path, dataset, **top), capsys) == said


def test_a_class_named_yes_in_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """YAML reads `yes: 5` as the key True: refused as the class 'True', which the data lacks,
    while its message listed 'yes' among the classes."""
    rows = "\n".join(f"{i % 7},{'yes' if i % 5 == 0 else 'no'}" for i in range(60))
    (tmp_path / "churn.csv").write_text("usage,churn\n" + rows + "\n")
    spec = _spec(tmp_path, {"path": "churn.csv", "target": "churn"})
    text = spec.read_text() + "class_weight:\n  yes: 5\n"  # as a user writes it
    spec.write_text(text)
    assert yaml.safe_load(text)["class_weight"] == {True: 5}
    assert _error(tmp_path, spec, capsys) == (
        "spec field 'class_weight': YAML reads an unquoted yes, no, on, off, true or false as a "
        'boolean (here true); quote the class as the data writes it ("yes": 5, not yes: 5)'
    )


@pytest.mark.parametrize(
    ("listed", "said"),
    [
        (  # year-named columns, as a wide table names them
            "features: [2019, 2020, 2021]",
            "spec field 'dataset.features[0]' must be a string; got 2019: YAML reads it "
            "unquoted as a number; quote it",
        ),
        (
            "features: ['on', off]",
            "spec field 'dataset.features[1]' must be a string; got False: YAML reads it "
            "unquoted as a boolean; quote it",
        ),
        (
            "exclude: [id, 1.0]",
            "spec field 'dataset.exclude[1]' must be a string; got 1.0: YAML reads it "
            "unquoted as a number; quote it",
        ),
        (
            "exclude: [id, ~]",
            "spec field 'dataset.exclude[1]' must be a string; got None: YAML reads it "
            "unquoted as null; quote it",
        ),
    ],
    ids=["years", "on-off", "number", "null"],
)
def test_a_list_of_column_names_that_yaml_read_otherwise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], listed: str, said: str
) -> None:
    """The lists said only "must be a non-empty list of strings", naming no item and not
    why, where `dataset.target: yes` gave YAML's reading and the edit to make."""
    rows = "\n".join(f"{i % 7},{i % 3},{i % 5},{i},{'a' if i % 2 else 'b'}" for i in range(30))
    (tmp_path / "wide.csv").write_text("on,off,1.0,id,y\n" + rows + "\n")
    (tmp_path / "job.yaml").write_text(
        "name: m\ntask: classification\nrecipe: {name: logistic}\n"
        f"dataset: {{path: wide.csv, target: y, {listed}}}\n"
    )
    assert _error(tmp_path, tmp_path / "job.yaml", capsys) == said
