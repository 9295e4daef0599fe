"""A user's own table without its header line: a scikit-learn pipeline of numbers and one text
column, exported by skl2onnx with its defaults (one ONNX input per column). Its first row
(`13.2,1.78,2.14,south,0`) was read as the header and the file refused for lacking every column,
as the docs say, but without the question they promise ("is the header line missing?"), which
was asked only of a row of numbers alone; batch and compare advised publishing with
`--features 13.2,1.78,...` instead, which publish refuses for a model of one input a column,
and training said the target column was missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_wine

from functions.runtime.csv_fields import missing_header_question
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.sklearn_models import region_frame, region_pipeline

ASK = "(is the header line missing? 4 of its 5 cells are numbers)"  # one text column


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """wine:1 and wine:2 (the region pipeline) published; rows.csv: 12 rows without a header."""
    work = tmp_path_factory.mktemp("headerless")
    store = LocalStore(work / "store")
    path = work / "region.onnx"
    path.write_bytes(region_pipeline("ignore")[1])
    for version in ("1", "2"):
        argv = ["--store", store.uri, "publish", str(path), "--name", "wine"]
        assert main([*argv, "--version", version]) == 0
    frame = region_frame(len(load_wine().target)).iloc[::15].reset_index(drop=True)
    frame["y"] = load_wine().target[::15]
    frame.to_csv(work / "rows.csv", index=False, header=False)
    frame.to_csv(work / "named.csv", index=False, header=["a", "b", "c", "d", "y"])
    return work


def run(work: Path, capsys: Any, *argv: str) -> str:
    """An `aiaas` command that fails (exit 1): its stderr."""
    assert main(["--store", str(work / "store"), *argv]) == 1
    err: str = capsys.readouterr().err
    return err


def test_batch_asks_whether_the_header_is_missing(work: Path, capsys: Any) -> None:
    err = run(work, capsys, "batch", "wine", str(work / "rows.csv"))
    assert f"the header lacks column(s) alcohol, malic, ash, region {ASK}" in err
    assert "--features" not in err


def test_compare_asks_whether_the_header_is_missing(work: Path, capsys: Any) -> None:
    err = run(work, capsys, "compare", "wine", "1", "2", "--data", str(work / "rows.csv"))
    assert ASK in err and "--features" not in err


def test_publish_data_asks_whether_the_header_is_missing(work: Path, capsys: Any) -> None:
    model = str(work / "region.onnx")
    argv = ["publish", model, "--name", "other", "--data", str(work / "rows.csv"), "--target", "y"]
    err = run(work, capsys, *argv)
    assert ASK in err
    assert not (work / "store" / "models" / "other").exists()


def test_training_asks_whether_the_header_is_missing(work: Path, capsys: Any) -> None:
    spec = work / "job.yaml"
    spec.write_text(
        f"name: region\ntask: classification\ndataset:\n  path: {work / 'rows.csv'}\n"
        "  target: y\nrecipe:\n  name: mlp\n"
    )
    err = run(work, capsys, "train", str(spec), "--check")
    assert "has no column 'y'" in err and ASK in err


def test_own_column_names_get_no_features_advice_for_a_model_of_one_input_a_column(
    work: Path, capsys: Any
) -> None:
    """`--features` names the columns of a model's one [N, F] input: publish refuses it for
    this model, so the refusal names the columns to rename, not a publish that fails."""
    err = run(work, capsys, "batch", "wine", str(work / "named.csv"))
    assert "the header lacks column(s) alcohol, malic, ash, region;" in err
    assert "--features" not in err and ASK not in err


@pytest.mark.parametrize(
    ("first_line", "asked"),
    [
        ("40,50000,3,1", " (is the header line missing?)"),
        # a real header may hold numbers: the question says how many, for the reader to judge
        ("station,2019,2020,2021", " (is the header line missing? 3 of its 4 cells are numbers)"),
        ("nan,inf,x", ""),  # words float() reads, but names here, not values
        ("age,income,plan", ""),
    ],
)
def test_the_question_a_first_line_gets(first_line: str, asked: str) -> None:
    assert missing_header_question(first_line.split(",")) == asked
