"""`aiaas baseline` and `aiaas explain --file` given a file of another format: refused by its
format, not read as CSV (an .onnx's bytes were quoted as a header lacking the model's columns);
an extension in capitals is the format it names (`train.NPY`), in these and `publish --data`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_cli_explain import FEATURES, cli, store, write_csv

__all__ = ["store"]  # the fixture: a linear classifier published as iris:1


@pytest.mark.parametrize(
    ("name", "says"),
    [
        # Read as CSV, its bytes were quoted as a header lacking the model's columns.
        ("model.onnx", "model.onnx: unsupported input format '.onnx'; this command reads .csv"),
        ("train.parquet", "train.parquet is a Parquet file; this command reads .csv, .jsonl or"),
    ],
)
def test_a_file_of_another_format_is_refused_by_name(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, says: str
) -> None:
    path = tmp_path / name
    path.write_bytes(b"PAR1\x15\x04a,b,c,d\n1,2,3,4\n")
    code, out, err = cli(store, capsys, "baseline", "iris", str(path))
    assert (code, out) == (1, "") and says in err and "lacks column" not in err, err
    data = write_csv(tmp_path / "train.csv", np.random.default_rng(0).normal(size=(20, 4)))
    assert cli(store, capsys, "baseline", "iris", str(data))[0] == 0
    code, out, err = cli(store, capsys, "explain", "iris", "--file", str(path))
    assert (code, out) == (1, "") and says in err and "lacks column" not in err, err


def test_an_upper_case_extension_is_read_as_its_format(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`train.NPY` (a Windows export) was refused as "unsupported input format '.npy'; this
    command reads .csv, .jsonl or .npy", contradicting itself, while `aiaas batch` scored it."""
    rows = np.random.default_rng(0).normal(size=(30, 4))
    with (tmp_path / "train.NPY").open("wb") as handle:  # np.save would append .npy
        np.save(handle, rows)
    code, out, err = cli(store, capsys, "baseline", "iris", str(tmp_path / "train.NPY"))
    assert code == 0 and "drift baseline = 30 rows" in out, err
    names = FEATURES.split(",")
    lines = [json.dumps(dict(zip(names, row, strict=True))) for row in rows[:3].tolist()]
    (tmp_path / "rows.JSONL").write_text("\n".join(lines) + "\n")
    code, out, err = cli(store, capsys, "explain", "iris", "--file", str(tmp_path / "rows.JSONL"))
    assert code == 0 and "explained 3 of 3 rows" in err, err
    assert [json.loads(line)["line"] for line in out.splitlines()] == [1, 2, 3]


@pytest.mark.parametrize(
    ("name", "says"),
    [
        # A CSV named by its month: the docs' list is what is read; renaming is the fix.
        ("sales.2024-11", "unsupported input format '.2024-11'; this command reads .csv, "),
        ("train.csv.gz", "train.csv.gz is gzip-compressed; this command reads .csv, .jsonl or "),
    ],
)
def test_an_unlisted_extension_is_refused_saying_how_to_read_it(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, says: str
) -> None:
    path = write_csv(tmp_path / name, np.random.default_rng(0).normal(size=(20, 4)))
    code, out, err = cli(store, capsys, "baseline", "iris", str(path))
    assert (code, out) == (1, "") and says in err and err.count("\n") == 1, err
    assert "rename a CSV file to end in .csv" in err or "gunzip -k train.csv.gz" in err, err


def test_publish_data_reads_an_upper_case_csv_as_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`publish --data held.CSV` was read as JSONL (the check was `suffix != ".csv"`): its
    header line was 'not valid JSON'."""
    rows = np.random.default_rng(0).normal(size=(20, 4)).round(3)
    held = tmp_path / "held.CSV"
    held.write_text(
        FEATURES
        + ",label\n"
        + "".join(f"{','.join(map(str, r))},{i % 3}\n" for i, r in enumerate(rows))
    )
    model = onnx_factory.linear_classifier(tmp_path / "iris.onnx")
    store = LocalStore(tmp_path / "store")
    argv = ["--store", store.uri, "publish", str(model), "--name", "iris", "--labels", "0,1,2"]
    code = main([*argv, "--features", FEATURES, "--data", str(held)])
    assert code == 0, capsys.readouterr().err
    held_out = (Registry(store).manifest("iris", "1").metrics or {})["held_out"]
    assert held_out["rows"] == 20 and held_out["target"] == "label", held_out
