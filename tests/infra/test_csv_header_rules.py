"""One header rule in every command that reads a user's CSV, batch's: a column the command reads
named twice is refused; blanks around a name are no part of it; a line of blanks is no row.

`aiaas explain --file`, `aiaas baseline` and `aiaas publish --data` read the file with
csv.DictReader, which keeps the LAST cell of a name the header repeats: a held-out file whose
header ends in a second `sl` column (99 in every row) was explained with sl = 99, binned into a
version's drift baseline and background (written once, for good), and scored onto the card
(accuracy 0.33 for 0.97), while `aiaas batch` and `aiaas compare` refused the same file. A
header written ` sl , sw ` was refused by those three ("lacks column(s) sl") while batch, compare
and training read it, and a line of blanks refused a whole baseline ("has 1 fields") or was a
bad row of explain's (its rows then numbered one more than batch's). hunt_datafiles 1, 5, 6.
Real parts: a skl2onnx classifier and the CLI's publish, baseline, explain and batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from functions.runtime.explain.background import BACKGROUND_FILE
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.store import LocalStore
from tests.cli_run import run

FEATURES = ["sl", "sw", "pl", "pw"]
CLASSES = np.array(["setosa", "versicolor", "virginica"])


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    root = tmp_path_factory.mktemp("header-rules")
    x, codes = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    fitted = LogisticRegression(max_iter=500).fit(x, CLASSES[codes])
    path = root / "iris.onnx"
    path.write_bytes(to_onnx(fitted, x[:1], options={"zipmap": False}).SerializeToString())
    return path, x, CLASSES[codes]


def _lines(x: np.ndarray, y: np.ndarray, extra: str = "") -> list[str]:
    return [
        ",".join(f"{v:g}" for v in row) + f",{label}{extra}"
        for row, label in zip(x, y, strict=True)
    ]


def _published(store: LocalStore, model: Path, name: str) -> None:
    argv = ("publish", str(model), "--name", name, "--features", ",".join(FEATURES))
    code, _, err = run(store, *argv)
    assert code == 0, err


def test_a_model_column_named_twice_is_refused_by_every_command(
    tmp_path: Path, iris: tuple[Path, np.ndarray, np.ndarray]
) -> None:
    model, x, y = iris
    data = tmp_path / "held-out.csv"
    data.write_text("\n".join(["sl,sw,pl,pw,y,sl", *_lines(x, y, ",99")]) + "\n")
    store = LocalStore(tmp_path / "store")
    _published(store, model, "iris")
    said = f"{data}: the header names columns twice: sl"
    code, _, err = run(store, "baseline", "iris", str(data))
    assert code == 1 and said in err, err
    assert not store.exists(f"{version_prefix('iris', '1')}/{BACKGROUND_FILE}")
    clean = tmp_path / "train.csv"
    clean.write_text("\n".join(["sl,sw,pl,pw,y", *_lines(x, y)]) + "\n")
    code, _, err = run(store, "baseline", "iris", str(clean))
    assert code == 0, err
    out = tmp_path / "why.jsonl"
    code, _, err = run(store, "explain", "iris", "--file", str(data), "--out", str(out))
    assert code == 1 and said in err, err
    argv = ("publish", str(model), "--name", "card", "--features", ",".join(FEATURES))
    code, _, err = run(store, *argv, "--data", str(data), "--target", "y")
    assert code == 1 and f"--data {said}" in err, err
    assert Registry(store).versions("card", missing_ok=True) == []
    code, _, err = run(store, "batch", "iris", str(data))  # the rule these now share
    assert code == 1 and "the header names columns twice: sl" in err, err


def test_a_column_read_by_none_may_repeat_and_the_label_may_not(
    tmp_path: Path, iris: tuple[Path, np.ndarray, np.ndarray]
) -> None:
    """Two `id` columns (an export's) pass through as batch passes them; two label columns
    (which is the truth?) are refused by publish --data."""
    model, x, y = iris
    data = tmp_path / "ids.csv"
    rows = [f"r{i},{line},r{i}" for i, line in enumerate(_lines(x, y))]
    data.write_text("\n".join(["id,sl,sw,pl,pw,y,id", *rows]) + "\n")
    store = LocalStore(tmp_path / "store")
    argv = ("publish", str(model), "--name", "iris", "--features", ",".join(FEATURES))
    code, _, err = run(store, *argv, "--data", str(data), "--target", "y")
    assert code == 0, err
    assert Registry(store).manifest("iris", "1").metrics["held_out"]["accuracy"] > 0.95
    twice = tmp_path / "labels.csv"
    twice.write_text("\n".join(["sl,sw,pl,pw,y,y", *_lines(x, y, ",setosa")]) + "\n")
    code, _, err = run(store, *argv, "--data", str(twice), "--target", "y")
    assert code == 1 and f"--data {twice}: the header names columns twice: y" in err, err


def test_blanks_around_names_and_a_line_of_blanks_read_as_batch_reads_them(
    tmp_path: Path, iris: tuple[Path, np.ndarray, np.ndarray]
) -> None:
    model, x, y = iris
    lines = _lines(x[:20], y[:20])
    data = tmp_path / "spaced.csv"  # a line of blanks where row 5 ended (line 7)
    data.write_text("\n".join([" sl , sw ,pl, pw ,y", *lines[:5], "   ", *lines[5:]]) + "\n")
    store = LocalStore(tmp_path / "store")
    _published(store, model, "iris")
    code, out, err = run(store, "baseline", "iris", str(data))
    assert code == 0, err
    assert "drift baseline = 20 rows" in out, out
    why = tmp_path / "why.jsonl"
    code, _, err = run(store, "explain", "iris", "--file", str(data), "--out", str(why))
    assert code == 0, err
    explained = [json.loads(line) for line in why.read_text().splitlines()]
    assert [e["line"] for e in explained] == [*range(2, 7), *range(8, 23)]
    assert all("error" not in e for e in explained)
    code, _, err = run(store, "batch", "iris", str(data))
    assert code == 0, err
    argv = ("publish", str(model), "--name", "card", "--features", ",".join(FEATURES))
    code, _, err = run(store, *argv, "--data", str(data), "--target", "y")
    assert code == 0, err
    held_out = Registry(store).manifest("card", "1").metrics["held_out"]
    assert held_out["rows"] == 20 and held_out["accuracy"] == 1.0


@pytest.mark.parametrize(
    ("layout", "hint"),
    [
        ("semicolons", "(the header is one column; is the file ';'-separated? save it comma-separated)"),
        ("tabs", "(the header is one column; is the file '\\t'-separated? save it comma-separated)"),
        ("sep", "(the first line is Excel's separator hint, not the header: delete that line)"),
    ],
)  # fmt: skip
def test_another_separator_is_named_as_batch_names_it(
    tmp_path: Path, iris: tuple[Path, np.ndarray, np.ndarray], layout: str, hint: str
) -> None:
    """Excel's exports: `;` with decimal commas, tabs, a `sep=,` first line. publish --data said
    "line 2: has 5 fields; the header has 1", baseline and explain only "lacks column(s)"."""
    model, x, y = iris
    lines = ["sl,sw,pl,pw,y", *_lines(x[:20], y[:20])]
    if layout == "semicolons":
        lines = [line.replace(",", ";").replace(".", ",") for line in lines]
    elif layout == "tabs":
        lines = [line.replace(",", "\t") for line in lines]
    else:
        lines = ["sep=,", *lines]
    data = tmp_path / "excel.csv"
    data.write_text("\n".join(lines) + "\n")
    store = LocalStore(tmp_path / "store")
    _published(store, model, "iris")
    code, _, err = run(store, "baseline", "iris", str(data))
    assert code == 1 and f"{data}: the header lacks column(s) sl, sw, pl, pw {hint}" in err, err
    argv = ("publish", str(model), "--name", "card", "--features", ",".join(FEATURES))
    code, _, err = run(store, *argv, "--data", str(data), "--target", "y")
    assert code == 1, err
    assert f"--data {data}: the header names none of the columns read {hint}" in err, err
