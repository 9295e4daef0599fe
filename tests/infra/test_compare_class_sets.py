"""`aiaas compare` of versions whose class lists differ, through the real CLI (a subprocess).

iris trained with scikit-learn and exported by skl2onnx (its default ZipMap of probabilities,
and `zipmap: False`'s tensor), published by the real CLI: version 1 on the three species;
version 2 on the same three in another order (`virginica, setosa, versicolor`: the fitted
classes permuted, a little more regularised, so the two differ a little); version 3 on four
(the species and `hybrid`, the rows whose petals are 4.5-5.1 cm long). The labels were already
matched by name, but the class scores were compared by column index (the tensor: A's `setosa`
against B's `virginica`, a difference of ~1), or left out (a ZipMap of other keys, and scores of
3 and 4 columns: "outputs: none alike to compare"), where the shadow compares them by name on the
classes both have. Now `aiaas compare` does too (the shadow's function, `dataplane/compare.py`),
and says which classes only one version has and how many rows were answered with one; the
figures equal an offline comparison of the same rows run through onnxruntime directly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from infra.cli.main import main
from tests.infra.test_serve import ROOT

SPECIES = ("setosa", "versicolor", "virginica")
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
ORDER = [2, 0, 1]  # version 2's classes: virginica, setosa, versicolor
CLASSES = {"1": SPECIES, "2": tuple(SPECIES[i] for i in ORDER), "3": ("hybrid", *SPECIES)}
MODELS = {"iris": "output_probability", "iris_tensor": "probabilities"}  # ZipMap, zipmap False


@dataclass(frozen=True)
class Iris:
    store: Path
    x: np.ndarray
    onnx: dict[tuple[str, str], Path]  # (model, version) -> the ONNX file published as it
    data: Path  # the rows, with their species in `species`


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> Iris:
    work = tmp_path_factory.mktemp("compare-class-sets")
    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    species = np.asarray(SPECIES)[y]
    grown = np.where((x[:, 2] >= 4.5) & (x[:, 2] <= 5.1), "hybrid", species)
    reordered = LogisticRegression(max_iter=1000, C=0.5).fit(x, species)
    for name in ("classes_", "coef_", "intercept_"):  # the same classifier, its classes moved
        setattr(reordered, name, getattr(reordered, name)[ORDER])
    fitted = {
        "1": LogisticRegression(max_iter=1000).fit(x, species),
        "2": reordered,
        "3": LogisticRegression(max_iter=1000).fit(x, grown),
    }
    store, paths = work / "store", {}
    for model in MODELS:
        for version, estimator in fitted.items():
            options = None if model == "iris" else {id(estimator): {"zipmap": False}}
            path = paths[model, version] = work / f"{model}-{version}.onnx"
            path.write_bytes(to_onnx(estimator, x[:1], options=options).SerializeToString())
            argv = ["--store", str(store), "publish", str(path), "--name", model]
            assert main([*argv, "--features", ",".join(FEATURES)]) == 0
    data = work / "rows.csv"
    lines = [",".join([*map(str, row.tolist()), s]) for row, s in zip(x, species, strict=True)]
    data.write_text(",".join([*FEATURES, "species"]) + "\n" + "\n".join(lines) + "\n")
    return Iris(store, x, paths, data)


def cli(iris: Iris, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "infra.cli.main", "--store", str(iris.store), *args]
    env = {**os.environ, "AIAAS_CACHE_DIR": str(iris.store.parent / "cli-cache")}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def report_of(iris: Iris, model: str, b: str, *more: str) -> dict[str, Any]:
    args = ["compare", model, "1", b, "--data", str(iris.data), "--json", "--no-progress"]
    found = cli(iris, *args, *more)
    assert found.returncode == 0, found.stderr
    return dict(json.loads(found.stdout))


def offline(iris: Iris, model: str, version: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A version's labels and its probabilities by class name, run by onnxruntime."""
    session = ort.InferenceSession(str(iris.onnx[model, version]))
    labels, scores = session.run(None, {"X": iris.x})
    if model == "iris":  # a ZipMap: one {class: probability} a row
        names = list(scores[0])
        columns = {name: np.asarray([row[name] for row in scores], np.float32) for name in names}
    else:  # the tensor: a column per class, in the fitted classes' order
        columns = {name: scores[:, i] for i, name in enumerate(CLASSES[version])}
    return np.asarray(labels), columns


def largest_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """The largest |B - A| over the classes both have, matched by name."""
    return max(
        float(np.abs(b[name].astype(np.float64) - a[name].astype(np.float64)).max())
        for name in a
        if name in b
    )


@pytest.mark.parametrize("model", list(MODELS))
def test_the_same_classes_in_another_order_compare_scores_by_name(iris: Iris, model: str) -> None:
    report = report_of(iris, model, "2")
    (a, scores_a), (b, scores_b) = offline(iris, model, "1"), offline(iris, model, "2")
    assert report["outputs_compared"] == [MODELS[model]]  # the ZipMap's were left out
    by_name = largest_difference(scores_a, scores_b)
    assert 0 < by_name < 0.2
    assert report["max_abs_diff"] == pytest.approx(by_name, rel=1e-6)  # by index: ~1
    assert report["agreement"]["agreed"] == int((a == b).sum())
    differ = report["labels_differ"]
    assert (differ["matched_by"], differ["only_a"], differ["only_b"]) == ("name", [], [])
    assert differ["unshared_rows"] == 0
    assert "class scores are compared by name" in differ["note"]


@pytest.mark.parametrize("model", list(MODELS))
def test_a_class_added_compares_scores_on_the_classes_both_have(iris: Iris, model: str) -> None:
    png = iris.store.parent / f"{model}-added.png"
    report = report_of(iris, model, "3", "--png", str(png))
    (a, scores_a), (b, scores_b) = offline(iris, model, "1"), offline(iris, model, "3")
    hybrid = int((b == "hybrid").sum())
    assert 0 < hybrid < len(b) // 2
    assert report["outputs_compared"] == [MODELS[model]]  # "none alike to compare" before
    assert report["max_abs_diff"] == pytest.approx(largest_difference(scores_a, scores_b), rel=1e-6)
    assert report["agreement"]["agreed"] == int((a == b).sum())
    differ = report["labels_differ"]
    assert (differ["only_a"], differ["only_b"], differ["unshared_rows"]) == ([], ["hybrid"], hybrid)
    assert "class scores are compared on the classes both have" in differ["note"]
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    # The summary and the picture's title say it too.
    text = cli(iris, "compare", model, "1", "3", "--data", str(iris.data), "--no-progress")
    assert text.returncode == 0, text.stderr
    assert (
        f"  classes only one version has: A none; B 'hybrid' ({hybrid} of {len(b)} rows answered "
        "with one, each a disagreement)"
    ) in text.stdout.splitlines()
    assert f"  outputs: max |B-A| {report['max_abs_diff']:.4g}," in text.stdout
    from infra.cli.compare_plot import _confusion
    from infra.cli.pyplot import pyplot

    plt = pyplot()
    figure = _confusion(plt, report)
    title = figure.axes[0].get_title()
    plt.close(figure)
    assert title.endswith(f"\nonly A: none; only B: hybrid ({hybrid} rows answered with one)")
