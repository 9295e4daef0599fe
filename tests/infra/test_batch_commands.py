"""`aiaas batch`: upload, fire the S3 -> SQS event at the handler, report where the output is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store import LocalStore
from infra.cli import row_progress
from infra.cli.main import main
from tests.batch_support import features_csv, read_csv, store_with_classifier


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalStore:
    return store_with_classifier(tmp_path, monkeypatch)


def test_batch_scores_a_file_and_prints_where_the_output_is(store, tmp_path, capsys):
    data = tmp_path / "scores é.csv"
    data.write_text(features_csv(np.ones((6, 4))) + "bad,1\n")
    assert main(["--store", store.uri, "batch", "iris", str(data)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"uploaded {data} to {store.uri}/batch/iris/input/scores é.csv"
    assert out[1].startswith("succeeded: scored 6 of 7 rows with iris:1 in ")
    assert out[1].endswith(", 1 failed")
    assert out[2:] == [
        f"output:  {store.uri}/batch/iris/output/scores é.csv",
        f"errors:  {store.uri}/batch/iris/output/scores é.csv.errors.jsonl",
        f"summary: {store.uri}/batch/iris/output/scores é.csv.summary.json",
    ]
    assert len(read_csv(store, "batch/iris/output/scores é.csv")) == 6


def test_a_batch_with_no_failed_row_names_no_errors_file(store, tmp_path, capsys):
    data = tmp_path / "clean.csv"
    data.write_text(features_csv(np.ones((3, 4))))
    assert main(["--store", store.uri, "batch", "iris", str(data)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].endswith(", 0 failed")
    assert out[2:] == [
        f"output:  {store.uri}/batch/iris/output/clean.csv",
        f"summary: {store.uri}/batch/iris/output/clean.csv.summary.json",
    ]


def test_batch_with_shards_writes_the_same_output(store, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(row_progress, "SHOW_AFTER_S", 0.0)  # as if each run took minutes
    monkeypatch.setattr(row_progress, "LOG_EVERY_S", 0.0)
    data = tmp_path / "rows.csv"
    data.write_text(features_csv(np.random.default_rng(2).normal(size=(30, 4))))
    assert main(["--store", store.uri, "batch", "iris", str(data), "--name", "one.csv"]) == 0
    # Progress on stderr, per chunk, up to every row scored; stdout is the report alone.
    shown = capsys.readouterr()
    assert shown.err.splitlines()[-1].startswith(
        "iris batch one.csv: 30 rows scored (100% of the file), "
    )
    assert not any("rows scored" in line for line in shown.out.splitlines())
    args = ["--store", store.uri, "batch", "iris", str(data), "--name", "two.csv", "--shards", "3"]
    assert main([*args, "--chunk-rows", "4"]) == 0
    shown = capsys.readouterr()
    assert "succeeded: scored 30 of 30 rows" in shown.out
    # The shard workers' chunks, counted in their processes, reach this one's line, with the
    # bytes they read: each shard's lines, the whole file between them.
    last = "iris batch two.csv: 30 rows scored (100% of the file), "
    assert shown.err.splitlines()[-1].startswith(last)
    one = store.get_bytes("batch/iris/output/one.csv")
    assert store.get_bytes("batch/iris/output/two.csv") == one


def test_batch_reports_a_failed_object(store, tmp_path, capsys):
    data = tmp_path / "wrong.csv"
    data.write_text("a,b\n1,2\n")
    assert main(["--store", store.uri, "batch", "iris", str(data)]) == 1
    shown = capsys.readouterr()
    assert shown.out.splitlines()[1:] == [  # no output or errors to point at
        "failed: no output with iris:1",
        f"summary: {store.uri}/batch/iris/output/wrong.csv.summary.json",
    ]
    assert shown.err == (  # exit 1: one line on stderr saying what to fix, as every command
        "aiaas batch: error: batch/iris/input/wrong.csv: the header lacks column(s) x_0, x_1, "
        "x_2, x_3; model iris:1 reads x: x_0, x_1, x_2, x_3\n"
    )
    assert not store.exists("batch/iris/output/wrong.csv")


def test_batch_refuses_what_it_cannot_score_before_uploading(store, tmp_path, capsys):
    data = tmp_path / "table.parquet"
    data.write_bytes(b"PAR1")
    assert main(["--store", store.uri, "batch", "iris", str(data)]) == 1
    assert capsys.readouterr().err == (
        "aiaas batch: error: batch/iris/input/table.parquet: unsupported input format "
        "'.parquet'; batch reads .csv, .jsonl, .ndjson, .npy, .csv.gz, .jsonl.gz, .ndjson.gz, and "
        "renaming does not convert a Parquet file: write it as CSV and upload that (pandas: "
        "pd.read_parquet('table.parquet').to_csv('table.csv', index=False))\n"
    )
    assert not store.exists("batch/iris/input/table.parquet")
    assert main(["--store", store.uri, "batch", "Bad Model", str(data)]) == 1
    assert "invalid model name 'Bad Model'" in capsys.readouterr().err
    assert main(["--store", store.uri, "batch", "iris", str(tmp_path / "missing.csv")]) == 1
    assert (
        capsys.readouterr().err == f"aiaas batch: error: no such file: {tmp_path / 'missing.csv'}\n"
    )
