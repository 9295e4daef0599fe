"""`aiaas explain --png` into a folder that is not there is refused before the work.

The explanation ran (up to the 10 s budget for 64 rows), its table was printed, and only then
did the PNG fail: exit 1 after a table, which a script reads as a failed explanation it then
cannot tell from one that printed nothing. A missing matplotlib was already refused first; a
missing, file-shaped or read-only folder is now too, in `output_file`'s words. Real parts: a
skl2onnx LinearRegression, `aiaas publish`, `aiaas baseline`, `aiaas explain`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.linear_model import LinearRegression

from infra.cli.main import main


@pytest.fixture
def store(tmp_path: Path) -> str:
    x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    model, data = tmp_path / "m.onnx", tmp_path / "train.csv"
    model.write_bytes(to_onnx(LinearRegression().fit(x, x @ [1.0, 2.0, 3.0]), x[:1]).SerializeToString())  # fmt: skip
    data.write_text("a,b,c\n" + "".join(",".join(map(str, r)) + "\n" for r in x.tolist()))
    uri = str(tmp_path / "store")
    assert main(["--store", uri, "publish", str(model), "--name", "m", "--features", "a,b,c"]) == 0
    assert main(["--store", uri, "baseline", "m", str(data)]) == 0
    return uri


@pytest.mark.parametrize("where", ["missing", "a-file", "read-only"])
def test_a_png_it_cannot_write_is_refused_before_the_table(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    folder = tmp_path / "pictures"
    if where == "a-file":
        folder.write_text("not a folder")
    elif where == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root writes in a read-only folder")
        folder.mkdir(mode=0o500)
    png = folder / "why.png"
    capsys.readouterr()
    code = main(["--store", store, "explain", "m", "--inputs", "[[1, 2, 3]]", "--png", str(png)])
    out, err = capsys.readouterr()
    assert (code, out) == (1, ""), out
    assert f"cannot write {png}: " in err and not png.exists()


def test_a_png_in_a_folder_that_is_there_is_drawn(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "why.png"
    assert (
        main(["--store", store, "explain", "m", "--inputs", "[[1, 2, 3]]", "--png", str(png)]) == 0
    )
    assert (
        png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {png}" in capsys.readouterr().out
    )
