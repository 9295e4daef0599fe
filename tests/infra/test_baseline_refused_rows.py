"""`aiaas baseline` refuses training rows the model cannot be served, before writing anything:
a background and a drift baseline are written once (versions are immutable), so rows stored
wrong left a version that could never be monitored or explained again. The real CLI on real
ONNX models and a real store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from functions.runtime.input_columns import indexed_names
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_cli_explain import FEATURES
from tests.infra.test_image_input_errors import uint8_pixels_model

SIDE = 8
SCALED = (
    "expected an integer in [0, 255]; these look like pixels scaled to [0, 1]: this model takes "
    "uint8 pixels 0-255 (its scaling is in the graph)"
)


def _baseline(store: LocalStore, name: str, data: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """`aiaas baseline` refused: its one-line error, once nothing was written."""
    capsys.readouterr()
    assert main(["--store", store.uri, "baseline", name, str(data)]) == 1
    err = capsys.readouterr().err.strip()
    for kept in ("background.json", "drift_baseline.json"):
        assert not store.exists(f"models/{name}/versions/1/{kept}"), err
    assert "\n" not in err
    return err


@pytest.mark.parametrize("features", [False, True])
def test_an_npy_of_the_wrong_width_is_refused_naming_the_file_and_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], features: bool
) -> None:
    # Without --features a [N, 5] array for a [N, 4] input was stored: five features binned,
    # its values regrouped into rows of 4 and predicted, then neither monitor nor explain could
    # use the version, and the right file was refused as the baseline already written. With
    # --features it was "4 feature names for rows of 5 values", naming neither file nor model.
    store = LocalStore(tmp_path / "store")
    model = onnx_factory.linear_classifier(tmp_path / "clf.onnx")
    named = ["--features", FEATURES] if features else []
    argv = ["--store", store.uri, "publish", str(model), "--name", "clf", "--labels", "a,b,c"]
    assert main([*argv, *named]) == 0
    rows = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    np.save(tmp_path / "train5.npy", np.hstack([rows, rows[:, :1]]))
    err = _baseline(store, "clf", tmp_path / "train5.npy", capsys)
    names = ": " + FEATURES.replace(",", ", ") if features else ""
    assert err == (
        f"aiaas baseline: error: {tmp_path / 'train5.npy'}: array shape [50, 5] holds rows of 5 "
        f"values; clf:1's input 'x' reads 4 a row ([N, 4]){names}"
    )
    np.save(tmp_path / "column.npy", rows[:, 0])  # one column: rows of 1 value
    assert "array shape [50] holds rows of 1 value;" in _baseline(
        store, "clf", tmp_path / "column.npy", capsys
    )
    np.save(tmp_path / "train.npy", rows)
    assert main(["--store", store.uri, "baseline", "clf", str(tmp_path / "train.npy")]) == 0
    assert "drift baseline = 50 rows" in capsys.readouterr().out


def _images() -> dict[str, tuple[np.ndarray, str]]:
    """Pixels a uint8 model refuses everywhere else (predict, batch, explain), each with the
    reason batch gives its first row."""
    rng = np.random.default_rng(1)
    wide = rng.integers(256, 65535, (6, SIDE, SIDE, 3)).astype(np.uint16)  # a 16-bit PNG's
    negative = rng.integers(-255, 0, (6, SIDE, SIDE, 3)).astype(np.int16)
    scaled = rng.random((6, SIDE, SIDE, 3)).astype(np.float32)  # divided by 255 already
    first = (wide.flat[0], negative.flat[0], scaled.flat[0])
    return {
        "wide": (wide, f"is {first[0]}; expected an integer in [0, 255]; fix or remove it (6 bad)"),
        "negative": (negative, f"is {first[1]}; expected an integer in [0, 255]; fix or remove"),
        "scaled": (scaled, f"is {float(first[2])}; {SCALED}; fix or remove it (6 bad)"),
    }


@pytest.mark.parametrize("side", [SIDE, "H"], ids=["fixed-size", "any-size"])
@pytest.mark.parametrize("kind", ["wide", "negative", "scaled"])
def test_pixels_a_uint8_model_refuses_are_refused_as_batch_refuses_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], side: int | str, kind: str
) -> None:
    # They were stored: a background of 16-bit (or [0, 1]) centres, wrapped or made black by
    # the uint8 cast when explaining, and drift bins every served image fell outside (PSI 8).
    store = LocalStore(tmp_path / "store")
    model = uint8_pixels_model(tmp_path / "px.onnx", side)
    assert main(["--store", store.uri, "publish", str(model), "--name", "px"]) == 0
    images, reason = _images()[kind]
    np.save(tmp_path / f"{kind}.npy", images)
    err = _baseline(store, "px", tmp_path / f"{kind}.npy", capsys)
    # Integers read from an .npy for a fixed-size model's rows are floats there (31010.0).
    err = err.replace(".0; expected", "; expected") if kind != "scaled" else err
    # A row of images of any size is an image, its value named by its place in it (a fixed
    # size's are read flat, as a CSV's columns x_0, x_1, ...).
    where = "value 0" if side == SIDE else "at index [0, 0, 0]"
    assert err.startswith(
        f"aiaas baseline: error: {tmp_path / kind}.npy: row 0: input 'x' {where} {reason}"
    ), err
    good = np.clip(images, 0, 255).astype(np.uint8)
    np.save(tmp_path / "good.npy", good)
    assert main(["--store", store.uri, "baseline", "px", str(tmp_path / "good.npy")]) == 0
    assert store.exists("models/px/versions/1/drift_baseline.json")


def test_a_csv_of_fractions_names_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    model = uint8_pixels_model(tmp_path / "px.onnx", 2)
    assert main(["--store", store.uri, "publish", str(model), "--name", "px"]) == 0
    rows = np.full((3, 12), 7.0)
    rows[1, 5] = 0.5
    lines = [",".join(indexed_names("x", 12))] + [",".join(map(str, r)) for r in rows]
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    err = _baseline(store, "px", tmp_path / "train.csv", capsys)
    assert err == (
        f"aiaas baseline: error: {tmp_path / 'train.csv'}: line 3: input 'x' value 5 is 0.5; "
        "expected an integer in [0, 255]; fix or remove it (1 bad)"
    )
