"""Users' own files at the edges `aiaas train` met in a bug hunt, through `--check` (the whole
message): a feature column named like the model's output, a text field over csv's default
128 KiB limit, channel-last image arrays, NaN written `-nan`, and the smaller messages (labels
missing two ways, an unclosed quote, a folder as the data set, an NPZ `y` of shape [N, 1])."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from functions.runtime import csv_fields
from tests.training.conftest import write_csv
from tests.training.test_check import _check, _csv_job, _error, _spec

CITIES = ("paris", "lyon", "nice", "lille")


def _city_rows(rows: int = 40) -> list[list[object]]:
    return [[(i * 7) % rows + 0.5, CITIES[i % 4], i % 2] for i in range(rows)]


@pytest.mark.parametrize(
    ("task", "name"), [("classification", "logits"), ("regression", "prediction")]
)
def test_a_column_named_like_the_output_is_refused_at_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], task: str, name: str
) -> None:
    """Before: --check passed, the model trained, and the export died on an ONNX traceback
    (SSA form: the raw column's input and the network's output shared one name)."""
    spec = _csv_job(tmp_path, [name, "city", "y"], _city_rows(), target="y", task=task)
    assert _error(tmp_path, spec, capsys) == (
        f"feature column '{name}' is named like the model's output or a step inside the "
        f"exported model graph ({name}, aiaas_features, aiaas_gaps, aiaas_medians, "
        "aiaas_col...): rename it in the file"
    )


def test_the_other_tasks_output_name_is_a_plain_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A classifier's output is `logits`: its column `prediction` clashes with nothing."""
    spec = _csv_job(tmp_path, ["prediction", "city", "y"], _city_rows(), target="y")
    code, out, err = _check(tmp_path, spec, capsys)
    assert (code, err) == (0, "") and "valid" in out, err


def _texts(tmp_path: Path, long: str) -> Path:
    rows = [[f"text number {i} says {['yes', 'no'][i % 2]}", i % 2] for i in range(40)]
    rows[5][0] = long
    write_csv(tmp_path / "t.csv", ["text", "label"], rows)
    recipe = {"name": "transformer", "params": {"d_model": 16, "heads": 2, "max_length": 16}}
    return _spec(
        tmp_path, {"path": "t.csv", "text_column": "text", "target": "label"}, recipe=recipe
    )


def test_a_text_over_128_kib_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: a `_csv.Error: field larger than field limit (131072)` traceback; the model reads
    the first max_length tokens of a text, however long."""
    spec = _texts(tmp_path, "word " * 30_000)
    code, out, err = _check(tmp_path, spec, capsys)
    assert (code, err) == (0, "") and "40 rows (all read)" in out, err


def test_what_csv_still_refuses_names_the_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any csv.Error left (here a field over a lowered limit) is a DataError, no traceback."""
    spec = _texts(tmp_path, "word " * 30)
    monkeypatch.setattr(csv_fields, "FIELD_LIMIT", 100)
    old = csv.field_size_limit(100)
    try:
        assert _error(tmp_path, spec, capsys) == (
            "t.csv line 7 is not valid CSV: field larger than field limit (100)"
        )
    finally:
        csv.field_size_limit(old)


def _rgba(tmp_path: Path, **dataset: object) -> Path:
    """60 RGBA pictures of 8x8 pixels as PIL, imageio and TensorFlow give them: [N, H, W, C]."""
    x = np.random.default_rng(0).integers(0, 255, size=(60, 8, 8, 4)).astype(np.uint8)
    np.savez(tmp_path / "img.npz", x=x, y=np.arange(60) % 2)
    return _spec(tmp_path, {"path": "img.npz", **dataset}, recipe={"name": "cnn"})


def test_an_input_shape_that_reorders_channel_last_images_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: x.reshape(N, 4, 8, 8) of [H, W, C] rows trained and published scrambled pixels."""
    spec = _rgba(tmp_path, input_shape=[4, 8, 8])
    assert _error(tmp_path, spec, capsys) == (
        "dataset.input_shape [4, 8, 8] reorders the rows of img.npz, which are [8, 8, 4]: x "
        "looks channel-last [height, width, channels], and a reshape would scramble its "
        "pixels, not move its channels first; save x.transpose(0, 3, 1, 2) (rows [4, 8, 8]), "
        "or give dataset.input_shape in the array's own order"
    )
    spec = _rgba(tmp_path, input_shape=[8, 4, 8])
    assert "a reshape keeps the values' order, it does not transpose axes" in _error(
        tmp_path, spec, capsys
    )


def test_channel_last_looking_images_read_as_channels_first_are_warned_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: a cnn took them as 8 channels of 8x4 pixels, with no word."""
    code, out, err = _check(tmp_path, _rgba(tmp_path), capsys)
    assert code == 0 and "valid" in out
    assert err == (
        "warning: img.npz x is [60, 8, 8, 4], read as channels-first [channels, height, "
        "width]: 8 channels of 8x4 pixels; if it holds channel-last images [height, width, "
        "channels], save x.transpose(0, 3, 1, 2)\n"
    )
    moved = np.load(tmp_path / "img.npz")
    np.savez(tmp_path / "img.npz", x=moved["x"].transpose(0, 3, 1, 2), y=moved["y"])
    assert _check(tmp_path, _rgba_spec_only(tmp_path), capsys)[2] == ""


def _rgba_spec_only(tmp_path: Path) -> Path:
    return _spec(tmp_path, {"path": "img.npz"}, recipe={"name": "cnn"})
