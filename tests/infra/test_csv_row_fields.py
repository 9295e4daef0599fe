"""One rule for a CSV record of more or fewer cells than its header, in every command that reads
one: refused in batch's words, `line N: has 5 fields; the header has 4`.

csv.DictReader put a record's cells beyond the header under the key None, where nothing read
them, and gave a short record's missing cells as None: `aiaas explain --file` explained
`1,000,2,3,4` as f0=1, f1=0, f2=2, f3=3 (the 4 dropped), `aiaas baseline` wrote such a row into a
background (for good: a version's background is written once), and `aiaas publish --data`
stopped with a TypeError traceback, its cell errors naming `instances[1]` (an index into a JSON
body the user never wrote) rather than the file's line. `publish --data` also scored the first
100,000 rows of a longer file without a word ("on 100000 rows of FILE"). Real parts: a skl2onnx
export and the CLI's publish, baseline and explain.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.linear_model import LinearRegression

from functions.runtime.explain.background import BACKGROUND_FILE
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.store import LocalStore
from tests.cli_run import run

FEATURES = "f0,f1,f2,f3"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("csv-fields")
    x = np.random.default_rng(0).normal(size=(100, 4)).astype(np.float32)
    path = root / "linreg.onnx"
    fitted = LinearRegression().fit(x, x @ np.array([1.0, 2.0, -1.0, 0.5]))
    path.write_bytes(to_onnx(fitted, x[:1]).SerializeToString())
    return path


def _published(tmp_path: Path, model: Path, name: str, background: bool = True) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    code, _, err = run(store, "publish", str(model), "--name", name, "--features", FEATURES)
    assert code == 0, err
    if background:
        rows = np.random.default_rng(1).normal(size=(30, 4))
        train = tmp_path / "train.csv"
        train.write_text(FEATURES + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
        code, _, err = run(store, "baseline", name, str(train))
        assert code == 0, err
    return store


def test_explain_file_refuses_a_row_of_a_cell_too_many_or_too_few(tmp_path: Path, model: Path) -> None:  # fmt: skip
    store = _published(tmp_path, model, "m")
    rows = tmp_path / "rows.csv"
    rows.write_text(f"{FEATURES},id\n1,2,3,4,r0\n1,000,2,3,4,r1\n5,6,7,r2\n1,2,3,4,r3\n")
    out = tmp_path / "why.jsonl"
    code, _, err = run(store, "explain", "m", "--file", str(rows), "--out", str(out))
    assert code == 1, err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["line"] for line in lines] == [2, 3, 4, 5]
    assert "error" not in lines[0] and "error" not in lines[3]
    assert lines[1]["error"] == "line 3: has 6 fields; the header has 5"
    assert lines[2]["error"] == "line 4: has 4 fields; the header has 5"
    assert "2 row(s) could not be explained" in err, err


def test_baseline_refuses_a_shifted_row_and_writes_nothing(tmp_path: Path, model: Path) -> None:
    store = _published(tmp_path, model, "m", background=False)
    data = tmp_path / "ragged.csv"
    data.write_text(f"{FEATURES}\n1,000,2,3,4\n5,6,7,8\n")
    code, out, err = run(store, "baseline", "m", str(data))
    assert code == 1 and out == ""
    assert f"{data}: line 2: has 5 fields; the header has 4" in err, err
    assert not store.exists(f"{version_prefix('m', '1')}/{BACKGROUND_FILE}")


def test_baseline_names_a_comma_that_ends_each_row(tmp_path: Path, model: Path) -> None:
    store = _published(tmp_path, model, "m", background=False)
    data = tmp_path / "ended.csv"
    data.write_text(f"{FEATURES}\n1,2,3,4,\n5,6,7,8,\n")
    code, _, err = run(store, "baseline", "m", str(data))
    assert code == 1
    assert (
        f"{data}: line 2: has 5 fields; the header has 4 (the row ends in a comma, which makes "
        "an empty last field: remove the commas that end the rows, or name that column in the "
        "header)"
    ) in err, err


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (f"{FEATURES},label\n1,000,2,3,4,9\n1,2,3,4,5\n", "line 2: has 6 fields; the header has 5"),
        (f"{FEATURES},label\n1,2,3,4,9\n1,2,3,4\n", "line 3: has 4 fields; the header has 5"),
        (f"{FEATURES},label\n1,2,3,4,9\n1,x,3,4,9\n", "line 3: f1 must be a number"),
        # a record quoted over two lines: the next one starts on line 5
        (f'{FEATURES},label,note\n1,2,3,4,9,"a\nb"\n1,2,3,4,9,c\n1,2,y,4,9,d\n', "line 5: f2 must be a number"),
    ],
)  # fmt: skip
def test_publish_data_names_the_line_of_a_bad_csv_record(
    tmp_path: Path, model: Path, text: str, says: str
) -> None:
    store = LocalStore(tmp_path / "store")
    data = tmp_path / "held-out.csv"
    data.write_text(text)
    argv = ("publish", str(model), "--name", "m", "--features", FEATURES, "--data", str(data))
    code, _, err = run(store, *argv)
    assert code == 1 and "Traceback" not in err, err
    assert f"aiaas publish: error: --data {data}: {says}" in err, err
    assert Registry(store).versions("m", missing_ok=True) == []


def test_publish_data_names_the_line_of_a_bad_jsonl_record(tmp_path: Path, model: Path) -> None:
    store = LocalStore(tmp_path / "store")
    data = tmp_path / "held-out.jsonl"
    good = {"f0": 1, "f1": 2, "f2": 3, "f3": 4, "label": 9}
    data.write_text(f"{json.dumps(good)}\n\n{json.dumps({**good, 'f3': 'four'})}\n")
    argv = ("publish", str(model), "--name", "m", "--features", FEATURES, "--data", str(data))
    code, _, err = run(store, *argv)
    assert code == 1
    assert f"--data {data}: line 3: f3 must be a number" in err, err


def test_publish_data_says_when_it_scored_only_the_first_rows(tmp_path: Path, model: Path) -> None:
    """100,010 rows, the last 10 predicted 1,000 off: the metrics are of the first 100,000,
    and the card and the output say so."""
    x = np.random.default_rng(2).normal(size=(100_010, 4)).astype(np.float32)
    y = x.astype(np.float64) @ np.array([1.0, 2.0, -1.0, 0.5])
    y[-10:] += 1000
    data = tmp_path / "big.csv"
    table = np.column_stack([x, y])
    np.savetxt(data, table, delimiter=",", header=f"{FEATURES},label", comments="", fmt="%.9g")
    store = LocalStore(tmp_path / "store")
    argv = ("publish", str(model), "--name", "big", "--features", FEATURES, "--data", str(data))
    code, out, err = run(store, *argv, "--no-progress")
    assert code == 0, err
    assert "on the first 100,000 of 100,010 rows of big.csv" in out, out
    held_out = Registry(store).manifest("big", "1").metrics["held_out"]
    assert held_out["rows"] == 100_000 and held_out["rows_in_file"] == 100_010
    card = store.get_bytes("models/big/versions/1/card/card.md").decode()
    assert "on the first 100,000 of 100,010 rows of `big.csv`" in card
    assert "`big.csv` has 100,010 rows: `--data` scores a file's first 100,000 at most" in card
