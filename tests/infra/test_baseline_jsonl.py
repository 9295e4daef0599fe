"""`aiaas baseline` on a tabular model's JSONL training rows: read as `aiaas batch` reads its
lines, the same background and drift baseline as the same rows in a CSV; a bad line is named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.drift.baseline import BASELINE_FILE
from functions.runtime.explain.background import BACKGROUND_FILE
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_cli_explain import FEATURES, cli, write_csv

NAMES = FEATURES.split(",")


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    """iris:1 and iris:2, the same model twice."""
    store = LocalStore(tmp_path / "store")
    model = onnx_factory.linear_classifier(tmp_path / "iris.onnx")
    argv = ["--store", store.uri, "publish", str(model), "--name", "iris", "--labels", "a,b,c"]
    for _ in range(2):
        assert main([*argv, "--features", FEATURES]) == 0
    return store


def test_jsonl_rows_give_the_baseline_their_csv_gives(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = np.random.default_rng(3).normal(size=(30, 4)).round(3)
    csv_file = write_csv(tmp_path / "train.csv", rows)
    lines = [
        json.dumps({"id": i, **dict(zip(NAMES, row, strict=True))}) if i % 2 else json.dumps(row)
        for i, row in enumerate(rows.tolist())
    ]  # records by feature name and bare lists of values, as batch reads both
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text("\n".join(lines) + "\n")
    assert cli(store, capsys, "baseline", "iris:1", str(csv_file))[0] == 0
    code, out, err = cli(store, capsys, "baseline", "iris:2", str(jsonl))
    assert code == 0, err  # refused before: "the header lacks ..." (read as a CSV)
    assert "iris:2: drift baseline = 30 rows in 10 bins a feature" in out
    baseline, background = (
        [_unmade(store.get_bytes(f"{version_prefix('iris', v)}/{name}")) for v in "12"]
        for name in (BASELINE_FILE, BACKGROUND_FILE)
    )
    assert baseline[0] == baseline[1]  # binned as served (float32) either way
    # The JSONL's values are read as the model's float32, the CSV's as float64: the same centres.
    np.testing.assert_allclose(background[0]["rows"], background[1]["rows"], rtol=1e-6)
    assert {k: v for k, v in background[0].items() if k != "rows"} == {
        k: v for k, v in background[1].items() if k != "rows"
    }


def test_a_bad_jsonl_line_is_named_and_nothing_is_written(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = json.dumps(dict(zip(NAMES, [1.0, 2.0, 3.0, 4.0], strict=True)))
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text("\n".join([good, good, json.dumps({"sepal_length": 1.0}), "{no"]) + "\n")
    code, _, err = cli(store, capsys, "baseline", "iris:1", str(jsonl))
    assert code == 1
    assert "train.jsonl: line 3: missing feature 'sepal_width'" in err
    assert "fix or remove it (2 bad)" in err
    assert not store.exists(f"{version_prefix('iris', '1')}/{BASELINE_FILE}")


def test_a_file_without_rows_is_named_and_a_jsonl_of_bad_lines_explains_none(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty JSONL, or a CSV of its header alone, was a ValueError traceback ('cannot reshape
    array of size 0'); `explain --file` of a JSONL whose every line is bad was one too."""
    empty, header = tmp_path / "empty.jsonl", tmp_path / "header.csv"
    empty.write_text("\n")
    header.write_text("id," + FEATURES + "\n")
    for path in (empty, header):
        code, _, err = cli(store, capsys, "baseline", "iris:1", str(path))
        assert (code, err) == (
            1,
            f"aiaas baseline: error: {path}: no rows; a baseline needs rows of the training data\n",
        )
    assert not store.exists(f"{version_prefix('iris', '1')}/{BASELINE_FILE}")
    rows = write_csv(tmp_path / "train.csv", np.arange(12, dtype=float).reshape(3, 4))
    assert cli(store, capsys, "baseline", "iris:1", str(rows))[0] == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{no\n" + json.dumps({"sepal_length": 1.0}) + "\n")
    code, out, err = cli(store, capsys, "explain", "iris:1", "--file", str(bad))
    assert [json.loads(line)["line"] for line in out.splitlines()] == [1, 2]
    assert code == 1 and "explained 0 of 2 rows" in err


def _unmade(document: bytes) -> dict[str, object]:
    """A stored baseline file without what it records of its data file (its name and sha256,
    which differ between the CSV and the JSONL of the same rows)."""
    doc: dict[str, object] = json.loads(document)
    made = doc.pop("made_from")
    assert isinstance(made, dict) and set(made) <= {"data", "data_sha256", "bins", "clusters"}
    return doc
