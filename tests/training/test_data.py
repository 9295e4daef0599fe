"""Data sets: sources and formats, clear errors before training, deterministic splits, stats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.runtime.s3store import make_s3_client
from tests.training.conftest import blobs_rows, tiny_spec, write_csv
from training.datasets import load_raw
from training.errors import DataError
from training.prepare import fingerprint, prepare, split_indices
from training.text import PAD_ID, UNK_ID, build_vocabulary

HEADER = ["a", "b", "colour"]


def _prepare(path: str | Path, recipe: str = "mlp", **dataset: Any) -> Any:
    spec = tiny_spec(recipe, dataset={"path": str(path), **dataset})
    kind = {
        "mlp": "tabular",
        "logistic": "tabular",
        "linear": "tabular",
        "cnn": "image",
        "gru": "sequence",
    }[recipe]
    return prepare(load_raw(spec.dataset, kind), spec, kind)


def test_csv_classification_is_encoded_split_and_described(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "blobs.csv", HEADER, blobs_rows(60))
    data = _prepare(path, target="colour")
    assert data.labels == ("blue", "green", "red")
    assert (len(data.train.y), len(data.validation.y), len(data.test.y)) == (42, 9, 9)
    assert data.train.x.dtype == np.float32 and data.row_shape == (2,)
    # Stratified: every class appears in every split in its share.
    assert np.bincount(data.validation.y).tolist() == [3, 3, 3]
    summary = data.summary
    assert summary["rows"] == 60 and summary["splits"] == {"train": 42, "validation": 9, "test": 9}
    assert summary["class_balance"] == {"blue": 0.3333, "green": 0.3333, "red": 0.3333}
    stats = summary["feature_stats"]["a"]
    assert set(stats) == {"mean", "std", "min", "max"}
    assert stats["min"] <= stats["mean"] <= stats["max"]
    assert stats["mean"] == pytest.approx(float(data.train.x[:, 0].mean()), rel=1e-5)


def test_splits_and_fingerprint_are_deterministic(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "blobs.csv", HEADER, blobs_rows(60))
    first, again = _prepare(path, target="colour"), _prepare(path, target="colour")
    assert np.array_equal(first.test.x, again.test.x)
    assert first.summary["fingerprint"] == again.summary["fingerprint"]
    other = write_csv(tmp_path / "other.csv", HEADER, blobs_rows(60, seed=1))
    assert _prepare(other, target="colour").summary["fingerprint"] != first.summary["fingerprint"]
    spec = tiny_spec("linear", seed=3)
    a, b = split_indices(100, None, spec), split_indices(100, None, spec)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert sorted(np.concatenate(a).tolist()) == list(range(100))


def test_fingerprint_covers_shape_and_dtype() -> None:
    x = np.arange(6, dtype=np.float32)
    y = np.zeros(2, dtype=np.int64)
    assert fingerprint(x.reshape(2, 3), y) != fingerprint(x.reshape(3, 2), y)
    assert fingerprint(x, y) != fingerprint(x.astype(np.float64), y)


def test_regression_target_stats(tmp_path: Path) -> None:
    data = _prepare("bundled:diabetes.csv", recipe="linear", target="progression")
    assert data.labels == () and data.train.y.dtype == np.float32
    assert data.summary["rows"] == 442 and "class_balance" not in data.summary
    assert data.summary["target_stats"]["min"] == 25.0


@pytest.mark.parametrize(
    ("rows", "dataset", "message"),
    [
        (
            [[1, 2, "red"], [3, 4, "blue"]] * 10,
            {"target": "label"},
            "has no column 'label'; columns are ['a', 'b', 'colour']",
        ),
        (
            [[1, 2, "red"], [3, 4, "blue"]] * 10,
            {"target": "colour", "features": ["a", "z"]},
            "has no column 'z'",
        ),
        (
            [[1, 2, "red"], ["nan", 4, "blue"]] * 10,
            {"target": "colour"},
            # Half a column missing is refused (under half is filled with the training median).
            "column 'a' has 10 missing values in 20 rows (50%), the first ('nan') at line 3 of "
            "bad.csv",
        ),
        (
            [[1, 2, "red"], [3, "", "blue"]] * 10,
            {"target": "colour"},
            "column 'b' has 10 missing values in 20 rows (50%), the first (an empty cell) at line 3",
        ),
        (
            [[1, 2, "red"], [3, "four", "blue"]] * 10,
            {"target": "colour"},
            "column 'b' has a non-numeric value 'four' at line 3 of bad.csv",
        ),
        (
            [[1, 2, "red"], [3, 4, "red"]] * 10,
            {"target": "colour"},
            "target 'colour' has a single class 'red'; classification needs at least 2",
        ),
        (
            [[1, 2, "red"], [3, 4, ""]] * 10,
            {"target": "colour"},
            "target 'colour' has 10 missing labels in 20 rows, the first at line 3 of bad.csv",
        ),
        (
            [[1, 2, "red"], [3, 4, "blue"]] * 2,
            {"target": "colour"},
            "has 4 rows; at least 10 are needed",
        ),
        ([[1, 2, "red"], [3, 4, "blue"]] * 10, {}, "set dataset.target to the label column"),
    ],
)
def test_bad_csv_data_is_a_clear_error(
    tmp_path: Path, rows: list[list[Any]], dataset: dict[str, Any], message: str
) -> None:
    path = write_csv(tmp_path / "bad.csv", HEADER, rows)
    with pytest.raises(DataError) as info:
        _prepare(path, **dataset)
    assert message in info.value.message
    assert info.value.status == 400


def test_ragged_and_empty_csv(tmp_path: Path) -> None:
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b,colour\n1,2,red\n3,blue\n")
    with pytest.raises(DataError, match=r"ragged\.csv line 3 has 2 fields; the header has 3"):
        _prepare(ragged, target="colour")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=r"empty\.csv is empty"):
        _prepare(empty, target="colour")


def test_missing_files_formats_and_bundles(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data set file .*nope\.csv not found"):
        _prepare(tmp_path / "nope.csv", target="y")
    odd = tmp_path / "data.xlsx"
    odd.write_text("x")
    with pytest.raises(
        DataError, match=r"cannot tell the format of data\.xlsx; set dataset\.format"
    ):
        _prepare(odd, target="y")
    with pytest.raises(DataError, match=r"no bundled data set 'bundled:mnist.npz'; bundled: \["):
        _prepare("bundled:mnist.npz", target="y")
    with pytest.raises(DataError, match="no generated data set 'noise'"):
        _prepare("generated:noise")


def test_npz_keys_shapes_and_nan(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.ones((20, 4)), labels=np.arange(20) % 2)
    with pytest.raises(DataError, match=r"d.npz has no array 'y'; arrays are \['x', 'labels'\]"):
        _prepare(path)
    assert _prepare(path, target="labels").labels == ("0", "1")
    x = np.arange(80, dtype=np.float64).reshape(20, 4)
    x[7, 2] = np.inf
    np.savez(path, x=x, y=np.arange(20) % 2)
    with pytest.raises(
        DataError,
        match=r"d.npz array 'x' feature 'x2' has an infinite value \(inf\) at row 7; replace it "
        "with a finite number",
    ):
        _prepare(path)
    np.savez(path, x=x.reshape(20, 2, 2), y=np.arange(20) % 2)
    with pytest.raises(DataError, match=r"'x' has an infinite value \(inf\) at row 7; replace"):
        _prepare(path)
    np.savez(path, x=x.reshape(20, 2, 2) * np.nan, y=np.arange(20) % 2)
    with pytest.raises(
        DataError, match=r"array 'x' has a NaN at row 0; training fills gaps only in a table of"
    ):
        _prepare(path)
    np.savez(path, x=np.array(["a"] * 20), y=np.arange(20) % 2)
    with pytest.raises(DataError, match="array 'x' must be numeric"):
        _prepare(path)


def test_npz_gaps_are_filled_with_the_training_median(tmp_path: Path) -> None:
    """A NaN in an .npz's table of features is a gap, filled as a CSV's empty cell is."""
    path = tmp_path / "d.npz"
    x = np.arange(80, dtype=np.float64).reshape(20, 4)
    x[7, 2] = x[11, 2] = np.nan
    np.savez(path, x=x, y=np.arange(20) % 2)
    data = _prepare(path)
    assert data.table is not None and not data.table.per_column  # one float input x [N, 4]
    gap = data.table.columns[2]
    train_rows = data.raw_train[:, 2]
    assert gap.missing == 2 and gap.median == np.median(train_rows[~np.isnan(train_rows)])
    assert not np.isnan(data.train.x).any()
    x[:10, 1] = np.nan
    np.savez(path, x=x, y=np.arange(20) % 2)
    with pytest.raises(
        DataError,
        match=r"d.npz array 'x' feature 'x1' has 10 missing values in 20 rows \(50%\), the first "
        r"\('nan'\) at row 0; training fills gaps \(NaN\) only in features missing under half",
    ):
        _prepare(path)


def test_row_shapes_must_fit_the_recipe() -> None:
    with pytest.raises(
        DataError,
        match=r"dataset.input_shape \[1, 7, 7\] holds 49 values; each row of bundled:digits.npz has 64",
    ):
        _prepare("bundled:digits.npz", recipe="cnn", input_shape=[1, 7, 7])
    with pytest.raises(
        DataError,
        match=r"recipe 'cnn' needs rows shaped \[channels, height, width\]; rows of bundled:digits.npz are \[64\]",
    ):
        _prepare("bundled:digits.npz", recipe="cnn")
    assert _prepare("bundled:digits.npz", recipe="cnn", input_shape=[1, 8, 8]).row_shape == (
        1,
        8,
        8,
    )
    assert _prepare("generated:waveforms", recipe="gru").row_shape == (32, 1)


def test_dataset_from_s3(s3_bucket: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "blobs.csv", HEADER, blobs_rows(30))
    make_s3_client().upload_file(str(path), s3_bucket, "data/blobs.csv")
    data = _prepare(f"s3://{s3_bucket}/data/blobs.csv", target="colour")
    assert (
        data.summary["rows"] == 30 and data.summary["source"] == f"s3://{s3_bucket}/data/blobs.csv"
    )
    with pytest.raises(
        DataError, match=f"cannot read data set s3://{s3_bucket}/data/missing.csv: no object"
    ):
        _prepare(f"s3://{s3_bucket}/data/missing.csv", target="colour")


def test_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow", reason="Parquet is the optional 'parquet' extra")
    import pyarrow.parquet as pq

    rows = blobs_rows(30)
    table = pa.table(
        {"a": [r[0] for r in rows], "b": [r[1] for r in rows], "colour": [r[2] for r in rows]}
    )
    pq.write_table(table, tmp_path / "blobs.parquet")
    from_parquet = _prepare(tmp_path / "blobs.parquet", target="colour")
    from_csv = _prepare(write_csv(tmp_path / "blobs.csv", HEADER, rows), target="colour")
    assert from_parquet.summary["fingerprint"] == from_csv.summary["fingerprint"]


def test_text_vocabulary_and_padding() -> None:
    vocab = build_vocabulary(
        ["Where is my parcel?", "my parcel is late", "refund please"], min_count=1, max_length=4
    )
    assert vocab.tokens[:2] == ("<pad>", "<unk>")
    assert vocab.tokens[2:5] == ("is", "my", "parcel")  # most frequent first, ties alphabetical
    ids = vocab.encode(["my parcel is very very late", "Refund!"])
    assert ids.dtype == np.int64 and ids.shape == (2, 4)
    assert ids[0].tolist() == [3, 4, 2, UNK_ID]  # truncated to max_length
    assert ids[1].tolist()[1:] == [PAD_ID] * 3
