"""A model card of a user's own names in a script matplotlib's default font lacks (a feature
named 销售额): each glyph was a matplotlib UserWarning, three lines saying nothing of what to
do, and the name drawn as boxes. Characters no installed font has are now one line naming
them and a font to install; a font installed that has them is used for them. `aiaas publish
--data` draws the card's plots from the real model and data."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from infra.cli.main import main
from tests import onnx_factory
from training import fonts

SCRIPT_G = ["\u210a_rate", "x_1", "x_2", "x_3"]  # a script g: in STIX, not in DejaVu Sans


def _publish(tmp_path: Path, features: list[str], caplog: pytest.LogCaptureFixture) -> str:
    fonts._SAID.clear()  # another test's characters said
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    rows = np.random.default_rng(0).normal(size=(40, 4)).round(3)
    data = tmp_path / "held.csv"
    lines = [",".join([*features, "label"])]
    lines += [",".join([*map(str, row), "abc"[i % 3]]) for i, row in enumerate(rows.tolist())]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    argv = ["--store", str(tmp_path / "store"), "publish", str(model), "--name", "m"]
    argv += ["--labels", "a,b,c", "--features", ",".join(features)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with caplog.at_level(logging.WARNING, logger="training.fonts"):
            assert main([*argv, "--data", str(data), "--target", "label"]) == 0
    assert not [w for w in caught if "Glyph" in str(w.message)]  # a warning a glyph
    assert (tmp_path / "store/models/m/versions/1/card/importance.png").is_file()
    return "\n".join(r.getMessage() for r in caplog.records if r.name == "training.fonts")


def test_characters_no_font_has_are_said_once_with_a_font_to_install(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    said = _publish(tmp_path, ["销售额", "x_1", "x_2", "x_3"], caplog)
    assert said.count("\n") == 0, said  # one line, for the three characters
    assert (
        "importance.png: 3 character(s) no installed font has are drawn as boxes (销售额)" in said
    )
    assert "apt install fonts-noto-cjk" in said
    # matplotlib reads its font list, not the system's fonts: a font installed since is found
    # once the list is deleted (the line said "used from the next picture on", and it was not)
    assert f"then delete matplotlib's list of fonts ({matplotlib.get_cachedir()}/fontlist-" in said


def test_an_installed_font_that_has_them_draws_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No CJK font is installed here; matplotlib's own STIX font has characters DejaVu Sans
    # lacks (U+210A, a script g): the fallback at work, as it is for a CJK font.
    assert _publish(tmp_path, SCRIPT_G, caplog) != ""
    caplog.clear()
    monkeypatch.setattr(fonts, "FALLBACKS", ("STIXGeneral",))
    assert _publish(tmp_path / "again", SCRIPT_G, caplog) == ""
