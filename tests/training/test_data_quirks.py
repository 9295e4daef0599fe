"""Numbers and files as users write them, through `aiaas train --check` (the whole message): a
value beyond float32 (it passed --check, then training failed on a NaN loss advising a lower
learning rate), `1_000` (Python reads it, serving refused it), a file without its header row,
a `-` for a missing number, and whole-number float labels from Parquet or NPZ."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.training.test_check import _check, _csv_job, _error, _spec
from training.datasets import load_raw
from training.spec import DatasetSpec
from training.targets import class_labels


def _rows(cell: Any, at: int = 3) -> list[list[Any]]:
    rows: list[list[Any]] = [[i * 0.5, i % 3, i % 2] for i in range(30)]
    rows[at][0] = cell
    return rows


def test_a_feature_beyond_float32_is_refused_at_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _csv_job(tmp_path, ["a", "b", "y"], _rows("1e39"), target="y")
    assert _error(tmp_path, spec, capsys) == (
        "feature column 'a' holds 1e+39 at line 5 of data.csv, beyond float32 (the model's "
        "numbers, up to 3.4e+38); rescale it (other units)"
    )


def test_an_npz_value_beyond_float32_is_named_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = np.ones((30, 2))
    x[4, 1] = 1e40  # it was called "an infinite value (inf)": the cast's, not the file's
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(30) % 2)
    spec = _spec(tmp_path, {"path": "d.npz"})
    assert _error(tmp_path, spec, capsys) == (
        "d.npz array 'x' holds 1e+40 at row 4, beyond float32 (the model's numbers, up to "
        "3.4e+38); rescale it (other units)"
    )


def test_a_regression_target_whose_squares_overflow_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [[i, i % 3, (-1) ** i * 3e38] for i in range(30)]
    spec = _csv_job(tmp_path, ["a", "b", "y"], rows, target="y", task="regression")
    assert _error(tmp_path, spec, capsys) == (
        "target 'y' holds 3e+38 at line 2 of data.csv: training squares errors in float32, so "
        "a regression target must stay within +-1e+18; rescale it (other units)"
    )


def test_an_underscore_number_is_no_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _csv_job(tmp_path, ["a", "b", "y"], _rows("1_000"), target="y")
    assert _error(tmp_path, spec, capsys).startswith(
        "feature column 'a' has a non-numeric value '1_000' at line 5 of data.csv"
    )


def test_a_dash_is_told_to_be_a_gap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _csv_job(tmp_path, ["a", "b", "y"], _rows("-"), target="y")
    assert _error(tmp_path, spec, capsys) == (
        "feature column 'a' has a non-numeric value '-' at line 5 of data.csv; if it marks a "
        "missing value, leave the cell empty or write NA (training fills a gap with the "
        "column's median); drop it with dataset.exclude or list the numeric columns in "
        "dataset.features"
    )


def test_a_file_without_its_header_row_is_told_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [f"{i * 0.5},{i % 3},{i % 2}" for i in range(30)]
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    spec = _spec(tmp_path, {"path": "data.csv", "target": "y"})
    assert _error(tmp_path, spec, capsys) == (
        "data.csv line 1 holds numbers only (0.0, 0, 0): it looks like data; the file needs a "
        "header row naming its columns"
    )


def test_year_columns_beside_a_named_target_are_a_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [[i, i + 1, i % 2] for i in range(30)]
    spec = _csv_job(tmp_path, ["2023", "2024", "y"], rows, target="y")
    assert _check(tmp_path, spec, capsys)[0] == 0


def test_whole_number_float_labels_read_as_a_csv_writes_them(tmp_path: Path) -> None:
    labels = [float(i % 2) for i in range(30)]
    labels[5] = 1.0
    pq.write_table(pa.table({"a": list(range(30)), "y": labels}), tmp_path / "d.parquet")
    raw = load_raw(DatasetSpec(path=str(tmp_path / "d.parquet"), target="y"), "tabular")
    assert class_labels(raw.y, "y")[0] == ("0", "1")  # were '0.0' and '1.0'
    assert class_labels(np.array([0.5, 1.0]), "y")[0] == ("0.5", "1.0")  # no whole numbers


@pytest.mark.parametrize(
    ("cell", "error"),
    [
        ("📦 ?!", "holds no word the tokenizer reads at line 5 of data.csv ('📦 ?!'; it reads"),
        ("\u200b", "has an empty or non-text value at line 5 of data.csv"),
    ],
)
def test_a_text_serving_would_refuse_is_refused_in_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cell: str, error: str
) -> None:
    """Such rows trained as all padding, counted in test accuracy, and every one was a 422 when
    served (a text hunt: emoji, punctuation, a zero-width space alone)."""
    rows: list[list[Any]] = [[f"where is parcel {i}", "delivery"] for i in range(20)]
    rows[3][0] = cell
    spec = _csv_job(tmp_path, ["text", "intent"], rows, target="intent", text_column="text")
    (tmp_path / "job.yaml").write_text(
        (tmp_path / "job.yaml").read_text().replace("name: mlp", "name: transformer")
    )
    assert error in _error(tmp_path, spec, capsys)
