"""`aiaas train --check`'s checks, run without torch and at the start of a real `aiaas train`
(real subprocesses; the cases themselves are in test_check.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from infra.cli.main import main
from tests.torchless import NO_TORCH, torch_or_skip
from tests.training.conftest import blobs_rows
from tests.training.test_check import BLOBS, _csv_job, _sorted_with_id

REPO = Path(__file__).resolve().parents[2]

WITHOUT_TORCH = NO_TORCH + textwrap.dedent(
    """
    from infra.cli.main import main
    code = main(sys.argv[1:])
    assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules)
    sys.exit(code)
    """
)


def _run_without_torch(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_TORCH, *argv],
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPO)},
        timeout=60,
        check=False,
    )


def test_check_runs_with_torch_blocked(tmp_path: Path) -> None:
    spec = _csv_job(tmp_path, ["id", *BLOBS], _sorted_with_id(), target="colour")
    ok = _run_without_torch("train", str(spec), "--check")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"{spec}: valid (m, classification, recipe mlp)\n")
    assert ok.stderr.startswith("warning: feature column 'id' looks like a row id")
    bad = _csv_job(tmp_path, BLOBS, blobs_rows(30), target="colour", task="regression")
    failed = _run_without_torch("train", str(bad), "--check")
    assert failed.returncode == 1
    assert failed.stderr.startswith(
        "aiaas train: error: spec field 'task': regression needs a numeric target"
    )


def test_a_real_train_checks_before_torch_is_imported(tmp_path: Path) -> None:
    # Without --check, with torch blocked: the data error must come first, so a bad spec never
    # reaches torch, let alone training, and nothing is written.
    bad = _csv_job(tmp_path, BLOBS, blobs_rows(30), target="colour", task="regression")
    run = tmp_path / "run"
    failed = _run_without_torch("train", str(bad), "--out", str(run), "--no-progress")
    assert failed.returncode == 1
    assert failed.stderr == (
        "aiaas train: error: spec field 'task': regression needs a numeric target, but column "
        "'colour' holds 'red' at line 2 of data.csv; set task: classification to predict "
        "classes, or point dataset.target at a numeric column\n"
    )
    assert not run.exists()


def test_a_real_train_prints_the_warnings_and_honours_exclude(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch_or_skip()  # it trains
    rows = _sorted_with_id()
    spec = _csv_job(tmp_path, ["id", *BLOBS], rows, target="colour", exclude=["id"])
    args = ["--store", str(tmp_path / "store"), "train", str(spec), "--publish", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "run")]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "published m:1" in out
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["preprocessing"]["feature_names"] == ["a", "b"]
    assert list(manifest["dataset"]["feature_stats"]) == ["a", "b"]
    assert manifest["training"]["dataset"]["exclude"] == ["id"]
    assert [s["shape"] for s in manifest["inputs"]] == [[-1, 2]]
    _csv_job(tmp_path, ["id", *BLOBS], rows, target="colour")  # the same job, id kept
    assert main([*args, "--out", str(tmp_path / "run2")]) == 0
    out, err = capsys.readouterr()
    assert err.startswith("warning: feature column 'id' looks like a row id")
    manifest = json.loads((tmp_path / "run2" / "manifest.json").read_text())
    assert manifest["preprocessing"]["feature_names"] == ["id", "a", "b"]


def test_data_errors_name_the_line_of_the_file(tmp_path: Path) -> None:
    # What a user opens in an editor: line numbers count the header and every line of a
    # quoted field that spans two, as batch error reports do.
    rows: list[list[Any]] = [
        [round(0.5 * i, 1), "two\nlines" if i == 10 else "ok", ["a", "b"][i % 2]] for i in range(60)
    ]
    rows[49][0] = "abc"  # a typo in a column of numbers (a gap would be filled)
    header = ["income", "note", "outcome"]
    spec = _csv_job(tmp_path, header, rows, target="outcome", exclude=["note"])
    for argv in ([], ["--check"]):
        failed = subprocess.run(
            [sys.executable, "-m", "infra.cli.main", "train", str(spec), *argv],
            capture_output=True,
            text=True,
            env=os.environ | {"PYTHONPATH": str(REPO)},
            timeout=120,
            check=False,
        )
        assert (failed.returncode, failed.stdout) == (1, ""), failed.stderr
        assert failed.stderr == (
            "aiaas train: error: feature column 'income' has a non-numeric value 'abc' at line "
            "52 of data.csv; drop it with dataset.exclude or list the numeric columns in "
            "dataset.features\n"
        )
    assert (tmp_path / "data.csv").read_text().splitlines()[51] == "abc,ok,b"
