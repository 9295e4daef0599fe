"""The advice `aiaas baseline`, `aiaas explain --file` and `aiaas batch` give for an .npz, which they do not
read: the line of numpy to save its rows as .npy names the array the file holds. It named
`['x']` whatever the file held, so for `np.savez('digits.npz', X=X, y=y)` (scikit-learn's
`X`) the line it said to run raised KeyError: 'x is not a file in the archive'."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store import LocalStore
from infra.cli.main import EXIT_ERROR, run
from tests import onnx_factory


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    workdir = tmp_path_factory.mktemp("npz_advice")
    store = LocalStore(workdir / "store")
    model = onnx_factory.linear_classifier(workdir / "m.onnx")
    argv = ["--store", store.uri, "publish", str(model), "--name", "m", "--labels", "a,b,c"]
    assert run([*argv, "--no-progress"]) == 0
    assert run([*argv[:-3], "fresh", *argv[-2:], "--no-progress"]) == 0  # baseline reads its file
    rows = workdir / "train.csv"  # a background, which explain needs before it reads a file
    rows.write_text("x_0,x_1,x_2,x_3\n5.1,3.5,1.4,0.2\n6.2,2.9,4.3,1.3\n")
    assert run(["--store", store.uri, "baseline", "m:1", str(rows)]) == 0
    return store


@pytest.mark.parametrize(
    ("arrays", "named"),
    [
        ({"X": np.ones((2, 4), np.float32), "y": np.zeros(2)}, "X"),
        ({"y": np.zeros(2), "features": np.ones((2, 4), np.float32)}, "features"),
        ({"x": np.ones((2, 4), np.float32)}, "x"),
    ],
)
@pytest.mark.parametrize("command", ["baseline", "explain", "batch"])
def test_the_npy_line_names_the_array_the_file_holds(
    store: LocalStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    arrays: dict[str, np.ndarray],
    named: str,
    command: str,
) -> None:
    data = tmp_path / "rows.npz"
    np.savez(data, **arrays)  # type: ignore[arg-type]
    argv = {
        "baseline": ["fresh:1", str(data)],
        "explain": ["m:1", "--file", str(data)],
        "batch": ["m", str(data)],  # refused before the upload, where the file is at hand
    }[command]
    assert run(["--store", store.uri, command, *argv]) == EXIT_ERROR
    err = capsys.readouterr().err
    line = re.search(r"np\.save\('rows\.npy', np\.load\('rows\.npz'\)\['(\w+)'\]\)", err)
    assert line is not None, err
    assert line.group(1) == named
    with np.load(data) as held:  # the line the user is told to run runs
        np.save(tmp_path / "rows.npy", held[line.group(1)])
