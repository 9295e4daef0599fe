"""`aiaas batch` of an NPY whose element type the model's input does not take as it is.

An array of bool (`np.save('in.npy', X > 2)`) was scored with True as 1.0, and one of int64 with
2**62 rounded to float32, where the predict API refuses both tensors: batch and the API must
agree on what a valid row is. Integers are judged by value, as the API judges them: a row
holding one float32 has no exact value for is reported, the others scored (`np.save` of
Python ints writes int64)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.batch_support import store_with_classifier


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalStore:
    return store_with_classifier(tmp_path, monkeypatch)


@pytest.mark.parametrize(
    ("array", "said"),
    [
        (np.ones((3, 4)) > 0.5, "got an array of bool (true/false values)"),
    ],
)
def test_an_npy_the_input_does_not_take_fails_naming_its_type(
    local: LocalStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    array: np.ndarray,
    said: str,
) -> None:
    np.save(tmp_path / "in.npy", array)
    assert main(["--store", str(local.root), "batch", "iris", str(tmp_path / "in.npy")]) == 1
    summary = json.loads(local.get_bytes("batch/iris/output/in.npy.summary.json"))
    assert summary["status"] == "failed"
    assert f"input 'x' expects float32; {said}" in summary["error"], summary["error"]
    assert "input 'x' expects float32" in capsys.readouterr().err


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.int64, np.uint64, np.float64])
def test_an_npy_every_value_of_which_float32_holds_is_scored(
    local: LocalStore, tmp_path: Path, dtype: type
) -> None:
    np.save(tmp_path / "in.npy", np.arange(8, dtype=dtype).reshape(2, 4))
    assert main(["--store", str(local.root), "batch", "iris", str(tmp_path / "in.npy")]) == 0
    summary = json.loads(local.get_bytes("batch/iris/output/in.npy.summary.json"))
    assert (summary["status"], summary["scored_rows"]) == ("succeeded", 2)


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
def test_rows_of_integers_float32_cannot_hold_are_reported_the_others_scored(
    local: LocalStore, tmp_path: Path, dtype: type
) -> None:
    rows = np.array([[1, 2, 3, 4], [2**62, 3, 1, 0], [2**24, 0, 0, 1], [0, 2**24 + 1, 0, 0]], dtype)
    np.save(tmp_path / "in.npy", rows)
    assert main(["--store", str(local.root), "batch", "iris", str(tmp_path / "in.npy")]) == 0
    summary = json.loads(local.get_bytes("batch/iris/output/in.npy.summary.json"))
    assert (summary["scored_rows"], summary["failed_rows"]) == (2, 2), summary
    errors = local.get_bytes("batch/iris/output/in.npy.errors.jsonl").decode().splitlines()
    reasons = [json.loads(line)["error"] for line in errors]
    assert "input 'x' value 0 is 4611686018427387904, an integer float32 has no exact" in reasons[0]
    assert "value 1 is 16777217" in reasons[1] and "past 2^24 round" in reasons[1]
