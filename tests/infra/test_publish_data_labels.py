"""The labels `aiaas publish --data` scores, read as training and `aiaas compare` read them.

Before (hunt_datafiles 7, 8): a label written with blanks around it (` setosa`, a file written
`5.1, 3.5, 1.4, 0.2, setosa`) refused the file as no class of the model, while training strips
them and compare scored it; a regressor's file with one empty target was "label '' is not a
number ... for a classifier pass --labels", naming no line; an NPZ of bytes labels (`b'setosa'`)
or of labels in a column [N, 1] was refused as holding "b'setosa'" or "['setosa']". Real parts:
skl2onnx models and the CLI's publish and compare.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.cli_run import run

FEATURES = "sl,sw,pl,pw"
CLASSES = np.array(["setosa", "versicolor", "virginica"])


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """(classifier, regressor of petal width, the rows, their classes)."""
    root = tmp_path_factory.mktemp("labels")
    x, codes = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    classifier = LogisticRegression(max_iter=500).fit(x, CLASSES[codes])
    regressor = LinearRegression().fit(x[:, :3], x[:, 3])
    paths = root / "iris.onnx", root / "width.onnx"
    options = {"zipmap": False}
    paths[0].write_bytes(to_onnx(classifier, x[:1], options=options).SerializeToString())
    paths[1].write_bytes(to_onnx(regressor, x[:1, :3]).SerializeToString())
    return paths[0], paths[1], x, CLASSES[codes]


def _accuracy(store: LocalStore, name: str) -> float:
    return float(Registry(store).manifest(name, "1").metrics["held_out"]["accuracy"])


def test_blanks_around_a_label_are_no_part_of_it(
    tmp_path: Path, iris: tuple[Path, Path, np.ndarray, np.ndarray]
) -> None:
    model, _, x, y = iris
    rows = [
        ", ".join(f"{v:g}" for v in row) + f", {label} " for row, label in zip(x, y, strict=True)
    ]
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("\n".join([f"{FEATURES},y", *rows]) + "\n")
    plain = tmp_path / "plain.csv"
    plain.write_text("\n".join([f"{FEATURES},y", *(r.replace(" ", "") for r in rows)]) + "\n")
    store = LocalStore(tmp_path / "store")
    for name, data in (("spaced", spaced), ("plain", plain)):
        argv = ("publish", str(model), "--name", name, "--features", FEATURES)
        code, _, err = run(store, *argv, "--data", str(data), "--target", "y")
        assert code == 0, err
    assert _accuracy(store, "spaced") == _accuracy(store, "plain") > 0.95


def test_a_missing_label_is_named_by_its_line_and_counted(
    tmp_path: Path, iris: tuple[Path, Path, np.ndarray, np.ndarray]
) -> None:
    _, model, x, _ = iris
    cells = [[f"{v:g}" for v in row] for row in x[:20]]
    for row in (5, 9):
        cells[row][3] = ""  # rows 5 and 9: lines 7 and 11
    data = tmp_path / "widths.csv"
    data.write_text("\n".join(["sl,sw,pl,target", *(",".join(c) for c in cells)]) + "\n")
    store = LocalStore(tmp_path / "store")
    argv = ("publish", str(model), "--name", "width", "--features", "sl,sw,pl")
    code, _, err = run(store, *argv, "--task", "regression", "--data", str(data))
    assert code == 1, err
    assert (
        f"--data {data}: 2 row(s) have no label in 'target' (an empty cell or null; the first "
        "on line 7)"
    ) in err, err
    assert "--labels" not in err
    assert Registry(store).versions("width", missing_ok=True) == []


@pytest.mark.parametrize("labels", ["bytes", "column"])
def test_npz_labels_as_bytes_or_a_column_are_their_classes(
    tmp_path: Path, iris: tuple[Path, Path, np.ndarray, np.ndarray], labels: str
) -> None:
    model, _, x, y = iris
    data = tmp_path / "held-out.npz"
    saved = y.astype("S") if labels == "bytes" else y.astype(str)[:, None]
    np.savez(data, x=x, y=saved)
    store = LocalStore(tmp_path / "store")
    argv = ("publish", str(model), "--name", "iris", "--features", FEATURES)
    code, _, err = run(store, *argv, "--data", str(data))
    assert code == 0, err
    assert _accuracy(store, "iris") > 0.95


def test_classes_written_with_a_blank_are_matched_as_written(tmp_path: Path) -> None:
    """review_revinfra 4: a model fit on `pd.read_csv` of `5.1, 3.5, 1.4, 0.2, setosa` has the
    classes ' setosa', ...; its own file's labels, stripped to 'setosa', were refused as no
    class of it (before the blanks were stripped, it was scored). A label is a class as written
    first, then less its blanks."""
    x, codes = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    blank = np.char.add(" ", CLASSES)
    model = tmp_path / "blank.onnx"
    fitted = LogisticRegression(max_iter=500).fit(x, blank[codes])
    model.write_bytes(to_onnx(fitted, x[:1]).SerializeToString())  # default options: ZipMap
    rows = [
        ", ".join(f"{v:g}" for v in row) + f",{c}" for row, c in zip(x, blank[codes], strict=True)
    ]
    data = tmp_path / "held.csv"
    data.write_text("\n".join([f"{FEATURES},y", *rows]) + "\n")
    store = LocalStore(tmp_path / "store")
    argv = ("publish", str(model), "--name", "blank", "--features", FEATURES)
    code, _, err = run(store, *argv, "--data", str(data), "--target", "y")
    assert code == 0, err
    assert _accuracy(store, "blank") == pytest.approx(fitted.score(x, blank[codes]), abs=0.01)


def test_a_file_without_its_label_column_is_told_the_columns_it_has(
    tmp_path: Path, iris: tuple[Path, Path, np.ndarray, np.ndarray]
) -> None:
    """hunt_quant: a CSV in the columns batch reads an unnamed input from (`X_0` ... `X_3` for
    skl2onnx's `X`) without a label column was told "it has ['X']": the input its columns were
    read as, not a column of the file. The refusal names the file's own header."""
    model, _, x, _ = iris
    data = tmp_path / "held.csv"
    rows = [",".join(f"{v:g}" for v in row) + ",setosa" for row in x[:5]]
    data.write_text("\n".join(["X_0,X_1,X_2,X_3,species", *rows]) + "\n")
    store = LocalStore(tmp_path / "store")
    code, _, err = run(store, "publish", str(model), "--name", "iris", "--data", str(data))
    assert code != 0
    assert err.rstrip().endswith(
        "(default: the first of ['label', 'target', 'y']); it has "
        "['X_0', 'X_1', 'X_2', 'X_3', 'species']"
    ), err
    code, _, err = run(store, "publish", str(model), "--name", "iris", "--data", str(data),
                       "--target", "class")  # fmt: skip
    assert err.rstrip().endswith(
        f"--target 'class' is not a column of {data}; it has "
        "['X_0', 'X_1', 'X_2', 'X_3', 'species']"
    ), err
    assert Registry(store).versions("iris", missing_ok=True) == []
