"""A gzip-compressed CSV given to `aiaas train` (batch reads `rows.csv.gz`, so users have them):
it was "cannot tell the format of data.csv.gz; set dataset.format", then, so set, "line 1 is
not UTF-8 text (byte 0x8b); save the file as UTF-8 (CSV UTF-8 in Excel)", an encoding it does
not have. hunt_datafiles 9. Real parts: gzip files and `aiaas train --check`.
"""

from __future__ import annotations

import contextlib
import gzip
import io
from pathlib import Path

import pytest

from infra.cli.main import main

TABLE = "a,b,y\n" + "".join(f"{i},{i % 3},{'yes' if i % 2 else 'no'}\n" for i in range(30))


@pytest.mark.parametrize(
    ("name", "fmt"), [("data.csv.gz", None), ("data.csv.gz", "csv"), ("data.csv", "csv")]
)
def test_a_gzip_file_is_told_to_be_decompressed(tmp_path: Path, name: str, fmt: str | None) -> None:
    data = tmp_path / name
    data.write_bytes(gzip.compress(TABLE.encode()))
    spec = tmp_path / "job.yaml"
    chosen = f"  format: {fmt}\n" if fmt else ""
    spec.write_text(
        f"name: gz\ntask: classification\ndataset:\n  path: {data}\n{chosen}  target: y\n"
        "recipe:\n  name: logistic\nepochs: 1\n"
    )
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["train", str(spec), "--check"])
    assert code == 1
    assert f"{name} is gzip-compressed, not CSV text: decompress it first (gunzip -k {name})" in (
        err.getvalue()
    ), err.getvalue()
