"""`aiaas train SPEC --check`: the data is read (header and a sample) and judged before training.

Each case is a real CSV/Parquet/NPZ file and a real spec, run through the CLI entry point; the
exit code and the whole message are asserted, because the message is what tells a user which
spec field to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from functions.runtime.s3store import make_s3_client
from infra.cli.main import main
from tests.training.conftest import blobs_rows, write_csv
from training.table_prep import column_lines

REPO = Path(__file__).resolve().parents[2]

BLOBS = ["a", "b", "colour"]


def _spec(tmp_path: Path, dataset: dict[str, Any], **top: Any) -> Path:
    data = {"name": "m", "task": "classification", "dataset": dataset, "recipe": {"name": "mlp"}}
    data.update(top)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _check(tmp_path: Path, spec: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["--store", str(tmp_path / "store"), "train", str(spec), "--check"])
    out, err = capsys.readouterr()
    return code, out, err


def _csv_job(tmp_path: Path, header: list[str], rows: list[list[Any]], **dataset: Any) -> Path:
    write_csv(tmp_path / "data.csv", header, rows)
    task = dataset.pop("task", "classification")
    return _spec(tmp_path, {"path": "data.csv", **dataset}, task=task)


def _error(tmp_path: Path, spec: Path, capsys: pytest.CaptureFixture[str]) -> str:
    code, out, err = _check(tmp_path, spec, capsys)
    assert code == 1 and "valid" not in out
    assert err.startswith("aiaas train: error: ") and err.count("\n") == 1
    return err.removeprefix("aiaas train: error: ").strip()


def test_a_good_spec_reports_what_it_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _csv_job(tmp_path, BLOBS, blobs_rows(60), target="colour")
    code, out, err = _check(tmp_path, spec, capsys)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{spec}: valid (m, classification, recipe mlp)",
        "  data: data.csv, 60 rows (all read); 2 features: a, b; target 'colour': 3 classes",
    ]


def test_missing_data_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").mkdir()
    spec = _spec(tmp_path / "specs", {"path": "nope.csv", "target": "y"})
    assert _error(tmp_path, spec, capsys) == (
        "spec field 'dataset.path': data set file nope.csv not found in the working directory "
        f"({tmp_path}) or beside the spec ({tmp_path / 'specs'})"
    )
    absolute = _spec(tmp_path, {"path": str(tmp_path / "gone.csv"), "target": "y"})
    assert _error(tmp_path, absolute, capsys) == (
        f"spec field 'dataset.path': data set file {tmp_path / 'gone.csv'} not found"
    )


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        (
            {"target": "label"},
            "spec field 'dataset.target': data set data.csv has no column 'label'; "
            "columns are ['a', 'b', 'colour']",
        ),
        (
            {"target": "colour", "features": ["a", "z"]},
            "spec field 'dataset.features': data set data.csv has no column 'z'; "
            "columns are ['a', 'b', 'colour']",
        ),
        (
            {"target": "colour", "exclude": ["id"]},
            "spec field 'dataset.exclude': data set data.csv has no column 'id'; "
            "columns are ['a', 'b', 'colour']",
        ),
        (
            {"target": "colour", "exclude": ["a", "b"]},
            "spec field 'dataset.exclude' leaves no feature columns in data.csv",
        ),
    ],
)
def test_missing_columns_name_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dataset: dict[str, Any], message: str
) -> None:
    spec = _csv_job(tmp_path, BLOBS, blobs_rows(30), **dataset)
    assert _error(tmp_path, spec, capsys) == message


def test_string_target_with_task_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _csv_job(tmp_path, BLOBS, blobs_rows(30), target="colour", task="regression")
    assert _error(tmp_path, spec, capsys) == (
        "spec field 'task': regression needs a numeric target, but column 'colour' holds 'red' "
        "at line 2 of data.csv; set task: classification to predict classes, or point "
        "dataset.target at a "
        "numeric column"
    )


def test_classification_targets_that_cannot_be_classes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = _csv_job(tmp_path, BLOBS, [[1, 2, "red"], [3, 4, "red"]] * 10, target="colour")
    assert _error(tmp_path, one, capsys) == (
        "spec field 'dataset.target': target 'colour' has a single class 'red'; "
        "classification needs at least 2"
    )
    prices = [[i, i % 7, round(10 + i * 0.37, 2)] for i in range(40)]
    floats = _csv_job(tmp_path, ["a", "b", "price"], prices, target="price")
    assert _error(tmp_path, floats, capsys) == (
        "spec field 'task': target 'price' has 40 distinct non-integer values (e.g. 10.37), "
        "too many to be classes; set task: regression, or point dataset.target at a column of "
        "class labels"
    )


def test_classes_written_in_two_cases_are_a_warning_with_the_edit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """'Gold', 'gold' and ' gold' were silently two classes (blanks are stripped: one)."""
    plans = ["gold", "Gold", " gold", "basic", "gold", "basic"]
    rows = [[i % 7, i % 5, plans[i % 6]] for i in range(36)]
    spec = _csv_job(tmp_path, ["a", "b", "plan"], rows, target="plan")
    code, out, err = _check(tmp_path, spec, capsys)
    assert code == 0 and "target 'plan': 3 classes" in out
    assert err == (
        "warning: target 'plan' writes one class several ways ('Gold' (6 rows), 'gold' (18 "
        "rows)): each is a class of its own, learned apart and answered as written; if they "
        "are one class, write it one way in the file (e.g. 'gold' in every row)\n"
    )


def test_column_names_with_a_comma_are_quoted_where_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`monthly income, €` listed bare read as two columns, `monthly income` and `€`."""
    rows = [
        [i % 7, "" if i % 10 == 0 else 900 + i, "ab"[i % 2], "xy"[i % 3 > 0]] for i in range(40)
    ]
    spec = _csv_job(tmp_path, ["a", "monthly income, €", "kind, old", "plan"], rows, target="plan")
    code, out, _ = _check(tmp_path, spec, capsys)
    assert code == 0
    assert (
        "3 features: a, 'monthly income, €', 'kind, old' (text, one-hot encoded: 'kind, old');"
        in out
    )
    described = {"monthly income, €": {"missing": 4, "rows": 40, "median": 919.0}}
    assert column_lines(described) == [
        "'monthly income, €': 4 missing values (10.0%) filled with the training median 919"
    ]


def test_non_numeric_feature_names_column_row_and_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [[1, 2, "red"], [3, "four", "blue"]] * 10
    spec = _csv_job(tmp_path, BLOBS, rows, target="colour")
    assert _error(tmp_path, spec, capsys) == (
        "feature column 'b' has a non-numeric value 'four' at line 3 of data.csv; drop it with "
        "dataset.exclude or list the numeric columns in dataset.features"
    )


def _sorted_with_id(rows: int = 60) -> list[list[Any]]:
    """The user's file: an id column, rows sorted by class, so the id alone predicts the class."""
    data = sorted(blobs_rows(rows), key=lambda r: str(r[2]))
    return [[i + 1, *row] for i, row in enumerate(data)]


def test_an_id_column_is_a_warning_and_exclude_drops_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _csv_job(tmp_path, ["id", *BLOBS], _sorted_with_id(), target="colour")
    code, out, err = _check(tmp_path, spec, capsys)
    assert code == 0 and f"{spec}: valid" in out
    assert err == (
        "warning: feature column 'id' looks like a row id (unique in every row, increasing); "
        "a model can learn the row order instead of the data: add it to dataset.exclude\n"
    )
    excluded = _csv_job(
        tmp_path, ["id", *BLOBS], _sorted_with_id(), target="colour", exclude=["id"]
    )
    code, out, err = _check(tmp_path, excluded, capsys)
    assert (code, err) == (0, "")
    assert "2 features: a, b;" in out


def test_an_id_by_name_is_a_warning_even_when_shuffled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = np.random.default_rng(0).permutation(30) + 1000
    rows = [[int(i), *row] for i, row in zip(ids, blobs_rows(30), strict=True)]
    spec = _csv_job(tmp_path, ["customer_id", *BLOBS], rows, target="colour")
    code, _, err = _check(tmp_path, spec, capsys)
    assert code == 0
    assert err == (
        "warning: feature column 'customer_id' looks like a row id (named like an id, unique in "
        "every row); a model can learn the row order instead of the data: add it to "
        "dataset.exclude\n"
    )


def test_a_feature_that_leaks_the_target_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    codes = {"red": 7, "green": 3, "blue": 5}
    rows = [[a, codes[str(c)], c] for a, _, c in blobs_rows(30)]
    spec = _csv_job(tmp_path, ["a", "code", "colour"], rows, target="colour")
    code, _, err = _check(tmp_path, spec, capsys)
    assert code == 0
    assert err == (
        "warning: feature column 'code' maps one-to-one onto the target 'colour': it leaks "
        "the label; add it to dataset.exclude unless it is known when predicting\n"
    )
    numeric = [[a, i % 3, i % 3] for i, (a, _, _) in enumerate(blobs_rows(30))]
    same = _csv_job(tmp_path, ["a", "copy", "class"], numeric, target="class")
    code, _, err = _check(tmp_path, same, capsys)
    assert code == 0 and err.startswith("warning: feature column 'copy' equals the target 'class'")


def test_a_text_column_that_leaks_the_target_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A category written after the outcome ("shipped"/"returned") scored accuracy 1.0 unwarned.
    status = {"red": "R-ok", "green": "G-late", "blue": "B-lost"}
    rows = [[a, status[str(c)], c] for a, _, c in blobs_rows(30)]
    spec = _csv_job(tmp_path, ["a", "status", "colour"], rows, target="colour")
    code, _, err = _check(tmp_path, spec, capsys)
    assert code == 0
    assert err == (
        "warning: feature column 'status' maps one-to-one onto the target 'colour': it leaks "
        "the label; add it to dataset.exclude unless it is known when predicting\n"
    )


def test_a_class_weight_for_a_class_the_target_lacks_fails_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --check said "valid"; the job then refused it only after torch had loaded.
    write_csv(tmp_path / "data.csv", BLOBS, blobs_rows(30))
    dataset = {"path": "data.csv", "target": "colour"}
    spec = _spec(tmp_path, dataset, class_weight={"red": 2, "purple": 3})
    assert _error(tmp_path, spec, capsys) == (
        "spec field 'class_weight' names ['purple'], which the target does not hold; "
        "its classes are ['blue', 'green', 'red']"
    )


def test_a_regression_feature_equal_to_the_target_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(1)
    rows = [[round(float(v), 3), round(float(v) * 2 + 1, 3), round(float(w), 3)]
            for v, w in rng.normal(size=(30, 2))]  # fmt: skip
    spec = _csv_job(tmp_path, ["y", "double", "noise"], rows, target="y", task="regression")
    spec.write_text(spec.read_text().replace("name: mlp", "name: linear"))
    code, out, err = _check(tmp_path, spec, capsys)
    assert code == 0 and "target 'y': numeric" in out
    assert err == (
        "warning: feature column 'double' is a linear function of the target 'y' "
        "(correlation 1.000): it leaks the label; add it to dataset.exclude unless it is known "
        "when predicting\n"
    )


def test_parquet_is_checked_like_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pa = pytest.importorskip("pyarrow", reason="Parquet is the optional 'parquet' extra")
    import pyarrow.parquet as pq

    rows = _sorted_with_id(30)
    columns = ["id", *BLOBS]
    pq.write_table(
        pa.table({name: [r[i] for r in rows] for i, name in enumerate(columns)}),
        tmp_path / "data.parquet",
    )
    spec = _spec(tmp_path, {"path": "data.parquet", "target": "colour"}, task="regression")
    assert _error(tmp_path, spec, capsys).startswith(
        "spec field 'task': regression needs a numeric target, but column 'colour' holds 'blue'"
    )
    spec = _spec(tmp_path, {"path": "data.parquet", "target": "colour", "exclude": ["id"]})
    code, out, err = _check(tmp_path, spec, capsys)
    assert (code, err) == (0, "")
    assert "data.parquet, 30 rows (all read); 2 features: a, b;" in out


def test_npz_arrays_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.random.default_rng(0).normal(size=(20, 3)), labels=np.arange(20) % 2)
    spec = _spec(tmp_path, {"path": "d.npz"})
    assert _error(tmp_path, spec, capsys) == (
        "spec field 'dataset.target': d.npz has no array 'y'; arrays are ['x', 'labels']"
    )
    np.savez(path, x=np.ones((20, 3)), y=np.array(["cat", "dog"] * 10))
    spec = _spec(tmp_path, {"path": "d.npz"}, task="regression")
    assert _error(tmp_path, spec, capsys).startswith(
        "spec field 'task': regression needs a numeric target, but array 'y' holds 'cat' at row 0"
    )
    np.savez(path, x=np.array([["a", "b"]] * 20), y=np.arange(20) % 2)
    assert _error(tmp_path, _spec(tmp_path, {"path": "d.npz"}), capsys) == (
        "spec field 'dataset.features': d.npz array 'x' must be numeric; it is <U1"
    )
    spec = _spec(tmp_path, {"path": "d.npz", "exclude": ["x0"]})
    assert _error(tmp_path, spec, capsys) == (
        "spec field 'dataset.exclude' drops columns of a CSV or Parquet table; "
        "d.npz holds arrays ['x', 'y']"
    )


def test_s3_data_is_checked(
    s3_bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_csv(tmp_path / "blobs.csv", ["id", *BLOBS], _sorted_with_id(30))
    make_s3_client().upload_file(str(data), s3_bucket, "data/blobs.csv")
    uri = f"s3://{s3_bucket}/data/blobs.csv"
    code, out, err = _check(tmp_path, _spec(tmp_path, {"path": uri, "target": "colour"}), capsys)
    assert code == 0 and f"data: {uri}, 30 rows (all read); 3 features: id, a, b;" in out
    assert err.startswith("warning: feature column 'id' looks like a row id")
    spec = _spec(tmp_path, {"path": uri, "target": "label"})
    assert _error(tmp_path, spec, capsys) == (
        f"spec field 'dataset.target': data set {uri} has no column 'label'; "
        "columns are ['id', 'a', 'b', 'colour']"
    )


def test_a_large_file_is_sampled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("training.data_checks.SAMPLE_ROWS", 50)
    rows = sorted(blobs_rows(90), key=lambda r: str(r[2]))  # the first 50 are blue and green
    rows[70][0] = "oops"  # past the sample: found when training reads the whole file
    spec = _csv_job(tmp_path, BLOBS, rows, target="colour")
    code, out, err = _check(tmp_path, spec, capsys)
    assert (code, err) == (0, "")
    assert "data.csv, first 50 rows read; 2 features: a, b; target 'colour': 2 classes" in out
    monkeypatch.setattr("training.data_checks.SAMPLE_ROWS", 25)  # only blue rows
    code, out, err = _check(tmp_path, spec, capsys)
    assert code == 0 and "target 'colour': 1 classes" in out
    assert err == (
        "warning: the first 25 rows hold a single class 'blue' of target 'colour'; if the whole "
        "file does, training stops (it needs 2 classes)\n"
    )


def test_bundled_specs_pass_the_check(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    specs = Path(__file__).resolve().parents[2] / "training" / "specs"
    for spec in sorted(specs.glob("*.yaml")):
        code, out, err = _check(tmp_path, spec, capsys)
        assert (code, err) == (0, ""), spec
        assert f"{spec}: valid" in out
