"""Small messages of `aiaas train` on users' own files, each once puzzling or needing two runs:
labels missing two ways counted together, an unclosed quote named as one, a folder given as
the data set said to be a folder, names with commas quoted on the card's Input line, and an
NPZ `y` saved as a column [N, 1] read as the labels it is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from infra.cli.main import main
from tests.torchless import torch_or_skip
from tests.training.conftest import blobs_rows
from tests.training.test_check import _check, _csv_job, _error, _spec


def test_missing_labels_and_na_labels_are_counted_in_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: "1 missing label"; the `NA` was refused only on the next run."""
    rows = blobs_rows(60)
    rows[7][2], rows[3][2], rows[20][2] = "", "NA", "NA"
    spec = _csv_job(tmp_path, ["a", "b", "colour"], rows, target="colour")
    assert _error(tmp_path, spec, capsys) == (
        "target 'colour' has 3 missing labels in 60 rows (2 written 'NA', a missing-value "
        "marker), the first at line 5 of data.csv; drop the rows without a label (a model "
        "learns nothing from them)"
    )


def test_an_unclosed_quote_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: "line 6 has 1 fields; the header has 3", and nothing about the quote."""
    lines = [f"{r[0]},{r[1]},{r[2]}" for r in blobs_rows(30)]
    lines[4] = '"0.1,0.2,gold'
    (tmp_path / "data.csv").write_text("a,b,colour\n" + "\n".join(lines) + "\n")
    spec = _spec(tmp_path, {"path": "data.csv", "target": "colour"})
    assert _error(tmp_path, spec, capsys) == (
        "data.csv line 6 has 1 fields; the header has 3; it holds an odd number of quotes (1): "
        "a quoted field opens there and does not close (a quote inside a field is written "
        'twice: "5"" screen")'
    )
    lines[4] = "0.1,gold"  # short, no quote: no hint
    (tmp_path / "data.csv").write_text("a,b,colour\n" + "\n".join(lines) + "\n")
    assert _error(tmp_path, spec, capsys) == "data.csv line 6 has 2 fields; the header has 3"


def test_a_directory_as_the_data_set_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: "data set file imgs not found", though it was there."""
    (tmp_path / "imgs").mkdir()
    spec = _spec(tmp_path, {"path": str(tmp_path / "imgs"), "target": "y"})
    assert _error(tmp_path, spec, capsys) == (
        f"spec field 'dataset.path': {tmp_path / 'imgs'} is a directory; training reads one "
        "CSV, NPZ or Parquet file (images: one .npz with x [N, C, H, W] and y)"
    )


def test_an_npz_y_of_one_column_is_read_as_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: "'y' must be 1-D" for the shape Keras and scikit-learn often save."""
    x = np.random.default_rng(0).normal(size=(60, 3))
    np.savez(tmp_path / "d.npz", x=x, y=(np.arange(60) % 3).reshape(60, 1))
    code, out, err = _check(tmp_path, _spec(tmp_path, {"path": "d.npz"}), capsys)
    assert (code, err) == (0, ""), err
    assert "target 'y': 3 classes" in out
    np.savez(tmp_path / "d.npz", x=x, y=np.eye(3)[np.arange(60) % 3])  # one-hot: still refused
    assert "'y' must be 1-D (or [N, 1])" in _error(
        tmp_path, _spec(tmp_path, {"path": "d.npz"}), capsys
    )


def test_the_cards_input_line_quotes_a_name_with_a_comma(tmp_path: Path) -> None:
    """Before: `monthly income, € float32 [-1, 1]` read as two inputs; the Features line
    quoted it."""
    torch_or_skip()  # it trains
    lines = [f"{i * 0.5},{['paris', 'lyon'][i % 2]},{(i * 7) % 3}" for i in range(60)]
    (tmp_path / "d.csv").write_text('"monthly income, €",city,y\n' + "\n".join(lines) + "\n")
    spec = {
        "name": "m", "task": "classification", "dataset": {"path": "d.csv", "target": "y"},
        "recipe": {"name": "logistic"}, "epochs": 1,
        "export": {"exporter": "torchscript"},  # the card's text is the point: ~2.4 s less
    }  # fmt: skip
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(spec))
    argv = ["--store", str(tmp_path / "store"), "train", str(tmp_path / "job.yaml")]
    assert main([*argv, "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    card = (tmp_path / "run" / "card" / "card.md").read_text()
    assert "- Input: 'monthly income, €' float32 [-1, 1], city string [-1, 1];" in card
    assert "- Features (2): 'monthly income, €', city;" in card
