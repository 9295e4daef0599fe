"""`aiaas baseline` and `aiaas explain --file` given a file of another format: refused by its
format, not read as CSV (an .onnx's bytes were quoted as a header lacking the model's columns)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store import LocalStore
from tests.infra.test_cli_explain import cli, store, write_csv

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
