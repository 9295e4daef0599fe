"""Class and feature names are drawn as written in every PNG aiaas draws.

matplotlib reads `$...$` in a text as TeX math: income brackets `$50k-$100k` were drawn as
`50k-100k` in math italics, and a name holding a TeX command it does not know (`$\\foo$`,
from a model file or a CSV header) stopped `publish --data`, `compare --png` and
`explain --png` with a mathtext traceback, nothing published. A real skl2onnx classifier with
such string classes, its held-out rows as a CSV, through the CLI.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from tests.cli_run import run_joined as run
from training import card

CLASSES = ("$\\foo$", "$50k-$100k", "b")
FEATURES = ("a$", "$b$", "f2", "f3")


@pytest.fixture(scope="module")
def dollars(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(model, held-out CSV): three classes named with dollars, four features too."""
    root = tmp_path_factory.mktemp("dollars")
    x = np.random.default_rng(0).normal(size=(120, 4)).astype(np.float32)
    y = np.array(CLASSES)[(x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)]
    estimator = LogisticRegression(max_iter=500).fit(x, y)
    model = root / "m.onnx"
    options = {id(estimator): {"zipmap": False}}
    model.write_bytes(to_onnx(estimator, x[:1], options=options).SerializeToString())
    lines = [",".join([*FEATURES, "label"])]
    lines += [",".join([*map(str, r.tolist()), t]) for r, t in zip(x, y, strict=True)]
    data = root / "held.csv"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return model, data


def test_publish_compare_and_explain_draw_names_with_dollars(
    dollars: tuple[Path, Path], tmp_path: Path
) -> None:
    model, data = dollars
    store = tmp_path / "store"
    publish = ["publish", str(model), "--name", "m", "--features", ",".join(FEATURES)]
    code, said = run(store, *publish, "--data", str(data))
    assert code == 0, said
    folder = store / "models/m/versions/1/card"
    for png in ("confusion.png", "importance.png"):
        assert (folder / png).stat().st_size > 0
    assert run(store, *publish)[0] == 0  # version 2
    code, said = run(
        store, "compare", "m", "1", "2", "--data", str(data), "--png", str(tmp_path / "c.png")
    )
    assert code == 0 and (tmp_path / "c.png").stat().st_size > 0, said
    assert run(store, "baseline", "m:1", str(data))[0] == 0
    row = '{"a$": -2, "$b$": -2, "f2": 0, "f3": 0}'  # predicted $\foo$: the title names it
    code, said = run(store, "explain", "m:1", "--inputs", row, "--png", str(tmp_path / "e.png"))
    assert code == 0 and "$\\foo$" in said, said


def test_ticks_are_the_names_not_math() -> None:
    figure = card.confusion_figure([[1, 0, 0], [0, 1, 0], [0, 0, 1]], CLASSES)
    ticks = figure.axes[0].get_xticklabels()
    assert [t.get_text() for t in ticks] == list(CLASSES)
    assert not any(t.get_parse_math() for t in ticks)  # `$50k-$100k` drawn with its dollars
