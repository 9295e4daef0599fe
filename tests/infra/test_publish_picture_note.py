"""An LSTM over [N, 50, 12] (both sides fixed, 8 or more) published without --window-features
is read as a 50x12 greyscale picture: explained in squares lumping sensors. Publish said
nothing; only `aiaas explain`, afterwards, noted it. Publish now says so and how to declare
it; a declared window, one of any length and a square picture get no such note."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.test_explain_wide_windows import _linear

NOTE = "is read as a 50x12 greyscale picture"


@pytest.mark.parametrize(
    ("steps", "features", "flags", "noted"),
    [
        (50, 12, (), True),
        (50, 12, ("--window-features", "last"), False),
        ("t", 12, (), False),  # any length beside 12 features: a window by its shape
        (50, 6, (), False),  # 6 features: a window by its shape
        (28, 28, (), False),  # square: a picture, as MNIST's
    ],
)
def test_publish_says_an_undeclared_fixed_window_is_read_as_a_picture(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    steps: int | str,
    features: int,
    flags: tuple[str, ...],
    noted: bool,
) -> None:
    store = LocalStore(tmp_path / "store")
    model = _linear(tmp_path / "m.onnx", steps, features)
    assert main(["--store", store.uri, "publish", str(model), "--name", "m", *flags]) == 0
    out = capsys.readouterr().out
    assert (NOTE in out) == noted, out
    if noted:
        assert "publish it with --window-features last ([N, steps, features])" in out
