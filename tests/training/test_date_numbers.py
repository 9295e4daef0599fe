"""`aiaas train --check` of a table whose date column is written as numbers (`20240131`).

A demand-planning export: several products a day, the day written YYYYMMDD. The column read
as numbers and was trained on as one without a word (unique in no row, so not "a row id"; a
column of `2024-01-31` texts is told it holds dates): the model took 20240131 to 20240201 as a
step of 70 and every later date as past its training range. It is now told so, with the same
advice as for a column of date texts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from infra.cli.main import main
from tests.training.conftest import write_csv

ADVICE = "derive numbers from it (days since a date, month, weekday)"


def _check(tmp_path: Path, days: list[Any]) -> int:
    rng = np.random.default_rng(0)
    rows = [[day, float(rng.normal()), float(rng.normal() * 10)] for day in days]
    write_csv(tmp_path / "sales.csv", ["date", "lag_1", "sales"], rows)
    spec = {
        "name": "demand",
        "task": "regression",
        "dataset": {"path": "sales.csv", "target": "sales"},
        "recipe": {"name": "mlp"},
    }
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    return main(["--store", str(tmp_path / "store"), "train", str(path), "--check"])


def test_dates_written_as_numbers_are_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 40 days across a month's end, 5 products a day: no value is unique, none a "row id".
    days = [int(f"202401{d:02d}") for d in range(1, 32)]
    days += [int(f"202402{d:02d}") for d in range(1, 10)]
    code = _check(tmp_path, [day for day in days for _ in range(5)])
    out, err = capsys.readouterr()
    assert code == 0 and "valid" in out
    assert (
        "warning: feature column 'date' holds dates written as numbers (e.g. 20240101, "
        "2024-01-01): read as a number, 20240131 to 20240201 is a step of 70"
    ) in err
    assert ADVICE in err and "looks like a row id" not in err


def test_numbers_that_are_no_dates_are_not_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Eight-digit numbers of the same range, but month 13 and day 45: an order number, say.
    code = _check(tmp_path, [20241345 + i % 3 for i in range(120)])
    out, err = capsys.readouterr()
    assert code == 0 and "valid" in out
    assert "dates written as numbers" not in err
