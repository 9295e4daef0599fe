"""`compare` of versions that name their classes differently, through the real CLI (a
subprocess) and the control plane over `aiaas serve`.

One wine classifier exported twice by skl2onnx: with string classes (its labels `class_0`,
`class_1`, `class_2`, read from the graph) and with integer ones (`0`, `1`, `2`); and a
classifier of two classes (`0`, `1`). B was judged against A's names: a version right on
every row A was right on scored accuracy 0 and 0% agreement, and the CI gate failed it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from infra.cli.main import main
from tests import sklearn_models
from tests.infra.test_serve import ROOT, ServeProcess, start_serve

FEATURES = [f"f{i}" for i in range(sklearn_models.FEATURES)]
NAMES = list(sklearn_models.CLASS_NAMES)  # class_0, class_1, class_2


@dataclass(frozen=True)
class Wine:
    """The store (versions 1: class names, 2: class indices, 3: two classes) and the test rows
    with what each version's estimator predicts for them."""

    store: Path
    x: np.ndarray
    y: np.ndarray  # the true class indices
    predicted: dict[str, np.ndarray]  # version -> its estimator's classes, as class indices


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> Wine:
    work = tmp_path_factory.mktemp("class-names")
    store = work / "store"
    named = sklearn_models.export("pipeline", work, zipmap=False, string_classes=True)
    numbered = sklearn_models.export("pipeline", work, zipmap=False)
    x_train, x_test, y_train, y_test = sklearn_models.wine_split()
    two = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        x_train[y_train < 2], y_train[y_train < 2]
    )
    path = work / "two.onnx"
    path.write_bytes(
        to_onnx(two, x_train[:1], options={id(two): {"zipmap": False}}).SerializeToString()
    )
    for onnx in (named.path, numbered.path, path):
        argv = ["--store", str(store), "publish", str(onnx), "--name", "wine"]
        assert main([*argv, "--features", ",".join(FEATURES)]) == 0
    predicted = {
        "1": np.asarray([NAMES.index(c) for c in named.estimator.predict(x_test)]),
        "2": numbered.estimator.predict(x_test),
        "3": two.predict(x_test),
    }
    return Wine(store, x_test, y_test, predicted)


@pytest.fixture(scope="module")
def server(wine: Wine) -> Iterator[ServeProcess]:
    yield from start_serve(wine.store)


def write_csv(wine: Wine, name: str, truth: list[str]) -> Path:
    """`batch/wine/input/<name>` in the store: the test rows and their truth in `target`."""
    path = wine.store / "batch" / "wine" / "input" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [",".join([*map(str, row.tolist()), t]) for row, t in zip(wine.x, truth, strict=True)]
    path.write_text(",".join([*FEATURES, "target"]) + "\n" + "\n".join(rows) + "\n")
    return path


def cli(wine: Wine, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "infra.cli.main", "--store", str(wine.store), *args]
    env = {**os.environ, "AIAAS_CACHE_DIR": str(wine.store.parent / "cli-cache")}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def compared(server: ServeProcess, a: str, b: str, data: str) -> dict[str, Any]:
    body = {"a": a, "b": b, "data": f"batch/wine/input/{data}", "label": "target"}
    answer = httpx.post(f"{server.base}/control/models/wine/compare", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    return {
        "accuracy": pytest.approx(accuracy_score(truth, predicted)),
        "macro_f1": pytest.approx(f1_score(truth, predicted, average="macro")),
    }


def test_the_cli_judges_b_with_its_own_labels_and_matches_classes_by_index(wine: Wine) -> None:
    """A names its classes, B numbers them, and the truth is numbered: B was scored 0."""
    path = write_csv(wine, "indices.csv", [str(t) for t in wine.y])
    found = cli(wine, "compare", "wine", "1", "2", "--data", str(path), "--json", "--no-progress")
    assert found.returncode == 0, found.stderr
    report = json.loads(found.stdout)
    a, b = wine.predicted["1"], wine.predicted["2"]
    assert report["metrics"]["a"] == scores(wine.y, a)
    assert report["metrics"]["b"] == scores(wine.y, b)
    assert report["metrics"]["b"]["accuracy"] > 0.9
    agreed = int((a == b).sum())
    assert report["agreement"] == {
        "rows": len(wine.y),
        "agreed": agreed,
        "rate": agreed / len(wine.y),
        "by": "class index",
    }
    differ = report["labels_differ"]
    assert (differ["a"], differ["b"], differ["matched_by"]) == (
        NAMES,
        ["0", "1", "2"],
        "class index",
    )
    assert "('class_0' = '0', 'class_1' = '1', 'class_2' = '2')" in differ["note"]
    assert report["confusion"]["labels"] == NAMES
    assert report["confusion"]["b_labels"] == ["0", "1", "2"]
    assert np.trace(report["confusion"]["matrix"]) == agreed
    # The summary says how the classes were matched; the CI gate judges B by its own labels
    # (it failed B: "accuracy dropped by 1"); the picture draws B's columns in B's names.
    png = wine.store.parent / "by-index.png"
    text = cli(wine, "compare", "wine", "1", "2", "--data", str(path), "--no-progress",
               "--max-drop", "accuracy=0.02", "--png", str(png))  # fmt: skip
    assert text.returncode == 0, text.stderr
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    lines = text.stdout.splitlines()
    assert (
        f"  agreement: {agreed / len(wine.y):.2%} ({agreed}/{len(wine.y)} rows, same class by index)"
        in lines
    )
    assert any(
        line.startswith("  classes: versions 1 (A) and 2 (B) name their classes differently")
        for line in lines
    )


def test_the_control_plane_reads_a_truth_in_names_for_a_version_that_numbers_its_classes(
    wine: Wine, server: ServeProcess
) -> None:
    """A (2) numbers its classes, B (1) names them, and the truth is named: A was scored 0."""
    write_csv(wine, "names.csv", [NAMES[t] for t in wine.y])
    report = compared(server, "2", "1", "names.csv")
    a, b = wine.predicted["2"], wine.predicted["1"]
    assert report["metrics"]["a"] == scores(wine.y, a)
    assert report["metrics"]["b"] == scores(wine.y, b)
    assert report["metrics"]["unknown_labels"] == {}
    assert report["agreement"]["by"] == "class index"
    assert report["agreement"]["agreed"] == int((a == b).sum())
    assert report["labels_differ"]["matched_by"] == "class index"
    # `aiaas compare` on the same key of the store answers the same report.
    found = cli(wine, "compare", "wine", "2", "1", "--data", "batch/wine/input/names.csv",
                "--label", "target", "--json", "--no-progress")  # fmt: skip
    assert found.returncode == 0, found.stderr
    printed = json.loads(found.stdout)
    for field in ("agreement", "labels_differ", "metrics", "confusion"):
        assert printed[field] == report[field]


def test_versions_with_no_class_in_common_and_other_counts_have_no_agreement(
    wine: Wine, server: ServeProcess
) -> None:
    """Three named classes against two numbered ones: nothing pairs them, so agreement is not
    comparable; each version is still judged with its own labels (B cannot answer class 2)."""
    write_csv(wine, "indices.csv", [str(t) for t in wine.y])
    report = compared(server, "1", "3", "indices.csv")
    assert report["agreement"] is None
    assert report["agreement_unavailable"].startswith(
        "versions 1 (A) and 3 (B) share no class name and have 3 and 2 classes: nothing says "
        "which of B's classes is which of A's, so agreement is not comparable"
    )
    assert report["labels_differ"]["matched_by"] is None
    assert report["metrics"]["a"] == scores(wine.y, wine.predicted["1"])
    assert report["metrics"]["b"] == scores(wine.y, wine.predicted["3"])
    # Sharing the names 0 and 1, versions 2 and 3 are matched by name.
    report = compared(server, "2", "3", "indices.csv")
    a, b = wine.predicted["2"], wine.predicted["3"]
    assert report["agreement"]["by"] == "name"
    assert report["agreement"]["agreed"] == int((a == b).sum())
    assert report["labels_differ"]["note"].startswith(
        "versions 2 (A) and 3 (B) have different classes (only A: '2'; only B: none): they are "
        "matched by name"
    )
    assert report["metrics"]["b"] == scores(wine.y, b)
    text = cli(wine, "compare", "wine", "1", "3", "--data", "batch/wine/input/indices.csv",
               "--no-progress")  # fmt: skip
    assert text.returncode == 0, text.stderr
    assert (
        "  agreement: not comparable: versions 1 (A) and 3 (B) share no class name" in text.stdout
    )
