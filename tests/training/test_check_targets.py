"""Targets and splits as real files give them, through `aiaas train --check` (the whole message).

Refused: a label written two ways ('1' and '1.0') and a missing one (Parquet null, NaN), which
used to become classes of their own. Warned (training goes on): a class too small to reach the
held-out splits, and a minority small enough that accuracy hides it. Also refused: a regression
target equal in every row, and splits left empty (naming the field to raise).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.training.conftest import blobs_rows
from tests.training.test_check import BLOBS, _check, _csv_job, _error, _spec


def test_one_class_written_two_ways_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two exports joined: one wrote the integer column as 1, the other (a column with a gap,
    # so float) as 1.0. They were two classes, '1' and '1.0', each with half the rows.
    rows: list[list[Any]] = [[i, i % 3, 1 + i % 2] for i in range(20)]
    rows += [[i, i % 3, f"{1 + i % 2}.0"] for i in range(20)]
    spec = _csv_job(tmp_path, ["a", "b", "grade"], rows, target="grade")
    assert _error(tmp_path, spec, capsys) == (
        "target 'grade' writes one class two ways: '1' at line 2 of data.csv and '1.0' at "
        "line 22 of data.csv; write each class one way"
    )


@pytest.mark.parametrize("gap", [None, float("nan")])
def test_a_missing_parquet_label_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], gap: float | None
) -> None:
    # A null in a string column was the class 'None'; a NaN in a float column the class 'nan'.
    labels: list[Any] = [["red", "blue"][i % 2] if gap is None else float(i % 2) for i in range(30)]
    labels[17] = gap
    table = pa.table({"a": [float(i) for i in range(30)], "b": [1.0] * 30, "colour": labels})
    pq.write_table(table, tmp_path / "data.parquet")
    spec = _spec(tmp_path, {"path": "data.parquet", "target": "colour"})
    assert _error(tmp_path, spec, capsys) == (
        "target 'colour' has 1 missing label in 30 rows, the first at row 17 of data.parquet; "
        "drop the rows "
        "without a label (a model learns nothing from them)"
    )


def test_a_missing_label_of_a_category_column_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pandas' `category` dtype is a dictionary column in Parquet: its nulls were read through
    their indices as a class (30 missing labels passed --check as "2 classes")."""
    labels: list[Any] = [["red", "blue"][i % 2] for i in range(30)]
    labels[17] = None
    colour = pa.array(labels).dictionary_encode()
    table = pa.table({"a": [float(i) for i in range(30)], "b": [1.0] * 30, "colour": colour})
    pq.write_table(table, tmp_path / "data.parquet")
    spec = _spec(tmp_path, {"path": "data.parquet", "target": "colour"})
    assert _error(tmp_path, spec, capsys).startswith(
        "target 'colour' has 1 missing label in 30 rows, the first at row 17 of data.parquet"
    )


def test_a_file_that_is_no_parquet_is_said_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CSV named .parquet (or a file cut short) was pyarrow's traceback."""
    (tmp_path / "data.parquet").write_text("a,b,colour\n1,2,red\n")
    spec = _spec(tmp_path, {"path": "data.parquet", "target": "colour"})
    assert _error(tmp_path, spec, capsys).startswith(
        "data.parquet is not a Parquet file pyarrow can read: "
    )


def test_nan_written_as_a_csv_label_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = blobs_rows(30)
    rows[4][2] = "NaN"
    spec = _csv_job(tmp_path, BLOBS, rows, target="colour")
    assert _error(tmp_path, spec, capsys) == (
        "target 'colour' has 1 missing label in 30 rows, the first at line 6 of data.csv; drop "
        "the rows without a label (a model learns nothing from them)"
    )


def test_a_class_a_spreadsheet_would_run_as_a_formula_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Labels go into batch CSV output (pred_label): said before training, which goes ahead
    # (labels such as "-ve" are common; the data is the user's own).
    rows = [[a, b, {"red": "=1+1", "green": "-1", "blue": "blue"}[c]] for a, b, c in blobs_rows(30)]
    spec = _csv_job(tmp_path, BLOBS, rows, target="colour")
    code, out, err = _check(tmp_path, spec, capsys)
    assert code == 0 and "3 classes" in out
    assert (
        "warning: target 'colour': class label '=1+1' starts with =, +, -, @, tab, CR or NUL: a "
        "spreadsheet opening batch output (its pred_label column) would run it as a formula "
        "(CWE-1236); if that output is opened in one, rename the class (a plain number such as "
        "-1 is fine)"
    ) in err


def test_a_class_too_small_for_the_held_out_splits_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = blobs_rows(60)
    rows[7][2] = "violet"  # one row: it lands in the training split only
    spec = _csv_job(tmp_path, BLOBS, rows, target="colour")
    code, out, err = _check(tmp_path, spec, capsys)
    assert code == 0 and "4 classes" in out
    assert err == (
        "warning: target 'colour': class 'violet' has fewer than 4 rows, too few to reach the "
        "validation and test splits, so no held-out metric says whether the model finds it; "
        "add rows of it or drop it from the file\n"
    )


def test_an_imbalanced_target_is_a_warning_naming_the_accuracy_it_gets_for_free(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows: list[list[Any]] = [
        [(i * 37) % 101, i % 5, "fraud" if i % 25 == 0 else "ok"] for i in range(200)
    ]
    spec = _csv_job(tmp_path, ["amount", "hour", "kind"], rows, target="kind")
    code, _, err = _check(tmp_path, spec, capsys)
    assert code == 0
    assert err == (
        "warning: target 'kind' is imbalanced: class 'fraud' is 4.0% of the rows (8 of 200), "
        "so always answering 'ok' scores accuracy 0.960; judge the model by macro_f1 "
        "(early_stopping: {monitor: macro_f1}), and weigh the classes (class_weight: balanced)\n"
    )
    # The spec already weighs the classes and watches f1: the warning said to, still.
    weighed = _spec(
        tmp_path,
        {"path": "data.csv", "target": "kind"},
        class_weight="balanced",
        early_stopping={"monitor": "f1"},
    )
    assert _check(tmp_path, weighed, capsys)[2].endswith("scores accuracy 0.960\n")
    # ... and by the name the advice (and every report) gives it, the same stored metric.
    named = _spec(
        tmp_path,
        {"path": "data.csv", "target": "kind"},
        class_weight="balanced",
        early_stopping={"monitor": "macro_f1"},
    )
    assert _check(tmp_path, named, capsys)[2].endswith("scores accuracy 0.960\n")
    balanced = _csv_job(tmp_path, BLOBS, blobs_rows(60), target="colour")
    assert _check(tmp_path, balanced, capsys)[2] == ""


def test_a_misspelt_class_is_said_so_not_told_to_be_weighed_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A week's file with `chrun` on 6 rows beside `churn`: it was warned as an imbalanced class,
    with the advice to weigh it up (class_weight: balanced), and learned as a class of its own
    (hunt_journey8 4). A rare real class beside it keeps its imbalance warning (rev14 3)."""
    kinds = ["churn", "stay"] * 24 + ["stay", "upgrade"]
    rows: list[list[Any]] = [[(i * 37) % 1009, i % 5, kinds[i % 50]] for i in range(1000)]
    for i in (0, 50, 100, 150, 200, 250):
        rows[i][2] = "chrun"
    spec = _csv_job(tmp_path, ["amount", "hour", "kind"], rows, target="kind")
    code, out, err = _check(tmp_path, spec, capsys)
    assert code == 0 and "4 classes" in out
    assert err == (
        "warning: target 'kind' has a class spelt like a far larger one ('chrun' (6 rows) "
        "beside 'churn' (474)): if 'chrun' is a misspelling of 'churn', fix those 6 rows in "
        "the file; as written, it is a class of its own, learned apart\n"
        "warning: target 'kind' is imbalanced: class 'upgrade' is 2.0% of the rows (20 of "
        "1000), so always answering 'stay' scores accuracy 0.500; judge the model by macro_f1 "
        "(early_stopping: {monitor: macro_f1}), and weigh the classes (class_weight: balanced)\n"
    )


@pytest.mark.parametrize(
    ("rare", "common"),
    [
        ("abnormal", "normal"),
        ("inactive", "active"),
        ("invalid", "valid"),
        ("incomplete", "complete"),
        ("no default", "default"),
        ("type_b", "type_a"),
        ("grade b low", "grade a low"),
        ("class_1", "class_2"),
        ("churns", "churn"),
    ],
)
def test_a_rare_class_of_a_pair_is_an_imbalance_not_a_misspelling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rare: str, common: str
) -> None:
    """A rare positive class (`abnormal` on 4.5% of the rows) was said to look misspelt, with the
    advice to write it as the majority (erasing the task), and lost its imbalance warning
    (rev14 1): pairs that differ by more than a slip, by a prefix or suffix, or by a last letter
    or digit are classes told apart on purpose."""
    rows: list[list[Any]] = [
        [(i * 37) % 1009, i % 5, rare if i % 100 < 5 and i < 900 else common] for i in range(1000)
    ]
    spec = _csv_job(tmp_path, ["amount", "hour", "y"], rows, target="y")
    assert _check(tmp_path, spec, capsys)[2] == (
        f"warning: target 'y' is imbalanced: class {rare!r} is 4.5% of the rows (45 of 1000), "
        f"so always answering {common!r} scores accuracy 0.955; judge the model by macro_f1 "
        "(early_stopping: {monitor: macro_f1}), and weigh the classes (class_weight: balanced)\n"
    )


def test_a_constant_regression_target_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It trained, published, and reported rmse 0 and r2 0: a model that answers 5.0.
    rows: list[list[Any]] = [[i, i % 3, 5.0] for i in range(40)]
    spec = _csv_job(tmp_path, ["a", "b", "price"], rows, target="price", task="regression")
    assert _error(tmp_path, spec, capsys) == (
        "spec field 'dataset.target': target 'price' is 5 in every row; regression needs a "
        "target that varies"
    )


def test_an_empty_split_names_the_field_to_raise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows: list[list[Any]] = [[i, i % 3, "abcde"[i // 2]] for i in range(10)]
    spec = _csv_job(tmp_path, ["a", "b", "grade"], rows, target="grade")
    assert _error(tmp_path, spec, capsys) == (
        "the validation split is empty: 2 rows in the smallest class of 5 give it none; add "
        "rows or raise validation_split"
    )


def test_a_whole_number_measurement_given_to_a_classifier_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found training a wine classifier spec with `target: proline` (whole numbers such as
    # 1065.0): it was read as 109 classes in 149 rows, warned only that classes were too small
    # to split, and trained a nonsense classifier. Many distinct numbers, most of them in one
    # row, are a quantity to regress whether or not they have a fraction.
    rows = [[i, i % 7, 300 + 13 * i] for i in range(40)]
    spec = _csv_job(tmp_path, ["a", "b", "proline"], rows, target="proline")
    assert _error(tmp_path, spec, capsys) == (
        "spec field 'task': target 'proline' has 40 distinct numbers in 40 rows (e.g. 300), "
        "too many to be classes; set task: regression, or point dataset.target at a column of "
        "class labels"
    )
    # Many whole-number classes each with rows enough to learn stay classes.
    codes = [[i, i % 7, i % 25] for i in range(100)]
    spec = _csv_job(tmp_path, ["a", "b", "code"], codes, target="code")
    assert _check(tmp_path, spec, capsys)[0] == 0


def test_a_regression_target_far_from_0_for_its_spread_is_warned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Targets near 1.7e12 spread over ~2e6: the float32 answers come in steps of ~1.3e5,
    and metrics from served answers were 11% off the card's, with no word at training."""
    rows: list[list[Any]] = [[i, i % 7, 1.7e12 + 12_345.0 * i] for i in range(200)]
    spec = _csv_job(tmp_path, ["a", "b", "price"], rows, target="price", task="regression")
    code, out, err = _check(tmp_path, spec, capsys)
    assert code == 0
    said = out + err
    assert "target 'price' is near 1.7e+12 and spreads only 7.13e+05" in said, said
    assert "in steps of 1.31e+05 there; subtract an offset (or scale the target)" in said


@pytest.mark.parametrize(
    ("values", "warned"),
    [([0, 1, 2], "0, 1, 2"), ([1, 2], "1, 2"), ([0, 1, 2, 3, 4, 5], None), ([0.5, 1, 2], None)],
)
def test_class_codes_regressed_are_warned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], values: list[float], warned: str | None
) -> None:
    # Class codes 0/1/2 under task: regression trained a model serving 0.73 and 1.37, said by
    # nothing; a count (0..5) or a measurement is no such warning (hunt_train2 3).
    rows = [[(i * 13) % 7, (i * 7) % 5, values[i % len(values)]] for i in range(60)]
    spec = _csv_job(tmp_path, ["a", "b", "cls"], rows, target="cls", task="regression")
    code, out, err = _check(tmp_path, spec, capsys)
    assert code == 0 and "target 'cls': numeric" in out
    if warned is None:
        assert "whole numbers" not in err
        return
    assert err == (
        f"warning: target 'cls' holds only the whole numbers {warned}: regressed, the model "
        "answers numbers between them (such as 0.6); if they are classes, set task: "
        "classification\n"
    )


def test_a_regression_target_with_a_decimal_comma_is_told_to_write_a_point(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Told "set task: classification to predict classes" for a price written 12,5 (a feature
    # column gets the point-for-decimals fix; hunt_train2 4).
    rows: list[list[Any]] = [[(i * 13) % 7, (i * 7) % 5, f"{i}.5"] for i in range(30)]
    rows[5][2] = "12,5"
    spec = _csv_job(tmp_path, ["a", "b", "price"], rows, target="price", task="regression")
    assert _error(tmp_path, spec, capsys) == (
        "target 'price' has a non-numeric value '12,5' at line 7 of data.csv; write numbers "
        "with no thousands separator and a point for decimals (1.5)"
    )


def test_a_class_weight_no_sampled_row_holds_is_warned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 20,000-row file is sampled: `class_weight: {hihg: 5}` was "valid", and the job refused
    # it only once the whole file was read, after torch had loaded. A rare class may still be
    # past the sample, so it is a warning, with the class the name is spelt like.
    monkeypatch.setattr("training.data_checks.SAMPLE_ROWS", 30)
    _csv_job(tmp_path, BLOBS, blobs_rows(60), target="colour")
    dataset = {"path": "data.csv", "target": "colour"}
    code, out, err = _check(tmp_path, _spec(tmp_path, dataset, class_weight={"gren": 2}), capsys)
    assert code == 0 and "first 30 rows read" in out
    assert err == (
        "warning: spec field 'class_weight' names ['gren'], a class no row of the first 30 "
        "holds (they hold ['blue', 'green', 'red']; 'gren' is spelt like 'green'); training "
        "refuses it unless a later row holds it: check the spelling\n"
    )
    spec = _spec(tmp_path, dataset, class_weight={"Red": 2, "purple": 1, "blue": 3})
    code, out, err = _check(tmp_path, spec, capsys)
    assert code == 0 and err == (
        "warning: spec field 'class_weight' names ['Red', 'purple'], classes no row of the "
        "first 30 holds (they hold ['blue', 'green', 'red']; 'Red' is spelt like 'red'); "
        "training refuses them unless a later row holds them: check the spelling\n"
    )


def test_a_target_that_is_an_id_is_refused_as_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `target: customer_id` (the id column, not `risk`): every row its own class, which was
    # refused as "the validation split is empty: 1 rows in the smallest class of 60 give it
    # none; add rows or raise validation_split": no row count or fraction fixes that.
    rows = [[a, b, f"C{i:05d}"] for i, (a, b, _) in enumerate(blobs_rows(60))]
    spec = _csv_job(tmp_path, ["a", "b", "customer_id"], rows, target="customer_id")
    assert _error(tmp_path, spec, capsys) == (
        "spec field 'dataset.target': target 'customer_id' has a different value in every row "
        "(e.g. 'C00000'), fewer than 2 rows a class: an id, a name or free text, not classes; "
        "point dataset.target at the column of class labels"
    )
    rows = [[a, b, f"C{i % 40:05d}"] for i, (a, b, _) in enumerate(blobs_rows(60))]
    spec = _csv_job(tmp_path, ["a", "b", "customer_id"], rows, target="customer_id")
    assert _error(tmp_path, spec, capsys).startswith(
        "spec field 'dataset.target': target 'customer_id' has 40 distinct values in 60 rows "
        "(e.g. 'C00000'), fewer than 2 rows a class"
    )


def test_a_regression_target_named_like_an_id_is_warned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `target: listing_id` where `price_eur` was meant: a model of noise trained with no word.
    rows = [[a, b, 100_000 + (i * 7919) % 60] for i, (a, b, _) in enumerate(blobs_rows(60))]
    spec = _csv_job(
        tmp_path, ["a", "b", "listing_id"], rows, target="listing_id", task="regression"
    )
    code, _, err = _check(tmp_path, spec, capsys)
    assert code == 0 and err == (
        "warning: target 'listing_id' looks like a row id (named like an id, unique in every "
        "row); a model learns nothing about the rows from it: point dataset.target at the "
        "column to predict\n"
    )
    rows = sorted(rows, key=lambda r: r[2])  # a file sorted by its target is not an id
    spec = _csv_job(tmp_path, ["a", "b", "price"], rows, target="price", task="regression")
    assert _check(tmp_path, spec, capsys)[2] == ""
