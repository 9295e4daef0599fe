"""`aiaas publish` of a classifier of many classes names the first ten in its output, then how
many in all: a skl2onnx model of 100 product categories printed every name on one line of
thousands of characters. The manifest, `aiaas show` and the card keep them all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from tests.cli_run import run_joined as run

CLASSES = [f"Household > Kitchen > Cookware > Category {i:03d}" for i in range(100)]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4)).astype(np.float32)
    y = np.array(CLASSES)[np.arange(600) % 100]
    estimator = LogisticRegression(max_iter=50).fit(x, y)
    path = tmp_path_factory.mktemp("many") / "m.onnx"
    options = {id(estimator): {"zipmap": False}}
    path.write_bytes(to_onnx(estimator, x[:1], options=options).SerializeToString())
    return path


@pytest.mark.parametrize("given", [False, True], ids=["from-graph", "from-labels"])
def test_publish_names_ten_classes_then_how_many(tmp_path: Path, model: Path, given: bool) -> None:
    store = tmp_path / "store"
    labels = ["--labels", ",".join(CLASSES)] if given else []
    code, said = run(store, "publish", str(model), "--name", "shop", *labels)
    assert code == 0, said
    source = "from --labels" if given else "read from the graph"
    [line] = [line for line in said.splitlines() if line.startswith("  classes ")]
    assert line == (
        f"  classes {', '.join(CLASSES[:10])}, ... (100 in all, {source}; "
        "`aiaas show` lists them all)"
    )
    assert max(map(len, said.splitlines())) < 1000  # 100 names made a line of 5,000 characters

    code, shown = run(store, "show", "shop:1")
    assert code == 0, shown
    assert f"labels:    {', '.join(CLASSES)}" in shown  # every class, as it says
    card = (store / "models/shop/versions/1/card/card.md").read_text()
    assert "- Labels (100): " in card and CLASSES[-1] in card


def test_ten_classes_are_all_named(tmp_path: Path) -> None:
    x = np.random.default_rng(1).normal(size=(60, 2)).astype(np.float32)
    classes = np.array([f"k{i}" for i in range(10)])
    estimator = LogisticRegression(max_iter=50).fit(x, classes[np.arange(60) % 10])
    path = tmp_path / "ten.onnx"
    path.write_bytes(to_onnx(estimator, x[:1]).SerializeToString())
    code, said = run(tmp_path / "store", "publish", str(path), "--name", "ten")
    assert code == 0, said
    assert f"  classes {', '.join(classes)} (read from the graph)\n" in said
