"""`aiaas batch --json`: what a CI script reads of a run (counts, keys, status), as one JSON
document on stdout and nothing else there, with the exit code the run's status gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store import LocalStore
from infra.cli import row_progress
from infra.cli.main import main
from tests.batch_support import features_csv, store_with_classifier


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalStore:
    return store_with_classifier(tmp_path, monkeypatch)


def test_a_run_with_bad_rows_is_one_json_document_and_exit_0(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before, a script had to scrape "succeeded: scored 6 of 7 rows ... 1 failed".
    data = tmp_path / "rows.csv"
    data.write_text(features_csv(np.ones((6, 4))) + "bad,1\n")
    assert main(["--store", store.uri, "batch", "iris", str(data), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)  # the whole of stdout: nothing else printed
    assert {k: doc[k] for k in ("store", "status", "rows", "scored_rows", "failed_rows")} == {
        "store": store.uri,
        "status": "succeeded",
        "rows": 7,
        "scored_rows": 6,
        "failed_rows": 1,
    }
    assert (doc["model"], doc["version"]) == ("iris", "1")
    for key in ("output", "errors", "summary"):
        assert store.exists(doc[key]), key
    assert json.loads(store.get_bytes(doc["summary"]))["run_id"] == doc["run_id"]


def test_progress_goes_to_stderr_and_no_progress_turns_it_off(
    store: LocalStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(row_progress, "SHOW_AFTER_S", 0.0)  # as if the run took minutes
    data = tmp_path / "rows.csv"
    data.write_text(features_csv(np.ones((6, 4))))
    assert main(["--store", store.uri, "batch", "iris", str(data), "--json"]) == 0
    shown = capsys.readouterr()
    assert json.loads(shown.out)["scored_rows"] == 6  # stdout: the document alone
    assert shown.err.startswith("iris batch rows.csv: 6 rows scored (100% of the file), ")
    args = ["--store", store.uri, "batch", "iris", str(data), "--name", "b.csv", "--json"]
    assert main([*args, "--no-progress"]) == 0
    shown = capsys.readouterr()
    assert (json.loads(shown.out)["scored_rows"], shown.err) == (6, "")


def test_a_failed_run_is_json_too_and_exit_1(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "wrong.csv"
    data.write_text("a,b\n1,2\n")
    assert main(["--store", store.uri, "batch", "iris", str(data), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "failed"
    assert "the header lacks column(s)" in doc["error"]


def test_deployed_without_wait_says_where_to_look(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "rows.csv"
    data.write_text(features_csv(np.ones((2, 4))))
    assert main(["--store", store.uri, "batch", "iris", str(data), "--deployed", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "store": store.uri,
        "input": "batch/iris/input/rows.csv",
        "output": "batch/iris/output/rows.csv",
        "summary": "batch/iris/output/rows.csv.summary.json",
    }


def test_a_failed_run_says_why_on_stderr_beside_its_json_document(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before, exit 1 came with nothing on stderr: the reason was only inside the JSON.
    data = tmp_path / "rows.csv"
    data.write_text("a,b\n1,2\n")
    assert main(["--store", store.uri, "batch", "iris", str(data), "--json"]) == 1
    shown = capsys.readouterr()
    doc = json.loads(shown.out)
    assert (doc["status"], shown.err) == ("failed", f"aiaas batch: error: {doc['error']}\n")
