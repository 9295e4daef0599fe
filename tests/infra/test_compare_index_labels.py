"""`aiaas compare --data` of a file whose labels are class indices (0, 1), between versions
matched by name whose classes are in another order (`cat, dog` against `dog, cat`). Each read
the index in its own order, so two versions answering alike on every row scored accuracy 1 and
0 (`B-A -1`, agreement 100%): a truth can only be one of them. Now the metrics are left out
saying why (and a --max-drop gate fails on it); where an index is the same class to both (a
class added at the end) they are given, and equal a count made here. Real ONNX models published
by the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from infra.cli.main import main
from tests import onnx_factory

FEATURES = "f1,f2,f3,f4"
LABELS = {"1": "cat,dog", "2": "dog,cat", "3": "cat,dog,bird", "4": "dog,cat,bird"}


def _columns(model: onnx.ModelProto, order: list[int]) -> onnx.ModelProto:
    """`model` (x @ W + B) with its class columns in `order`, a column of -100 for any past
    its own: the same classifier, its classes moved (and one it never answers)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for init in copy.graph.initializer:
        array = numpy_helper.to_array(init)
        far = -100.0 if array.ndim == 1 else 0.0  # the bias: the column never wins
        wide = np.concatenate([array, np.full((*array.shape[:-1], 1), far, np.float32)], -1)
        init.CopyFrom(numpy_helper.from_array(wide[..., order].copy(), init.name))
    return copy


@pytest.fixture
def pets(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """A store with versions 1-4 of `pets` (LABELS), all answering alike by name, and rows."""
    base = onnx.load(onnx_factory.linear_classifier(tmp_path / "a.onnx", classes=2, seed=7))
    orders = {"1": [0, 1], "2": [1, 0], "3": [0, 1, 2], "4": [1, 0, 2]}
    store = tmp_path / "store"
    for version, order in orders.items():
        path = tmp_path / f"pets-{version}.onnx"
        onnx.save(_columns(base, order), path)
        argv = ["--store", str(store), "publish", str(path), "--name", "pets", "--version"]
        assert main([*argv, version, "--labels", LABELS[version], "--features", FEATURES]) == 0
    x = np.random.default_rng(1).normal(size=(60, 4)).astype(np.float32)
    answered = ort.InferenceSession(str(tmp_path / "a.onnx")).run(None, {"x": x})[0].argmax(1)
    return store, x, answered


def _write(path: Path, x: np.ndarray, labels: list[str]) -> Path:
    rows = [",".join([*map(str, row.tolist()), y]) for row, y in zip(x, labels, strict=True)]
    path.write_text(f"{FEATURES},label\n" + "\n".join(rows) + "\n")
    return path


def _compare(store: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(["--store", str(store), "compare", "pets", *argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out else {}


def test_indices_another_class_to_each_version_give_no_metrics(
    pets: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, x, answered = pets
    truth = ["cat" if i == 0 else "dog" for i in answered.tolist()]
    truth[:6] = ["dog" if t == "cat" else "cat" for t in truth[:6]]  # 6 rows both get wrong
    indices = _write(tmp_path / "indices.csv", x, [str(["cat", "dog"].index(t)) for t in truth])
    named = _write(tmp_path / "named.csv", x, truth)
    for b in ("2", "4"):
        code, report = _compare(store, capsys, "1", b, "--data", str(indices))
        assert code == 0
        assert report["agreement"]["rate"] == 1.0
        assert report["metrics"] is None
        first = ["cat", "dog"].index(truth[0])  # every row's index differs: the first
        theirs = LABELS[b].split(",")[first]
        assert report["metrics_unavailable"] == (
            f"the labels in column 'label' are class indices ('{first}' is {truth[0]!r} to "
            f"version 1 (A) and {theirs!r} to version {b} (B)), and the two order their classes "
            f"differently (A: cat, dog; B: {LABELS[b].replace(',', ', ')}): nothing says which "
            "class a row holds; give the labels by name to compare the metrics"
        )
        gated = main(
            [
                "--store",
                str(store),
                "compare",
                "pets",
                "1",
                b,
                "--data",
                str(indices),
                "--max-drop",
                "accuracy=0.02",
            ]
        )
        assert gated == 1
        assert "no accuracy to judge: the labels in column 'label' are class indices" in (
            capsys.readouterr().err
        )
        # By name the same rows score alike, as a count here says: 54 of 60 right.
        code, report = _compare(store, capsys, "1", b, "--data", str(named))
        assert code == 0
        metrics = report["metrics"]
        assert metrics["a"]["accuracy"] == metrics["b"]["accuracy"] == pytest.approx(54 / 60)
        assert metrics["delta"]["accuracy"] == 0


def test_indices_the_same_class_to_both_are_read(
    pets: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cat, dog` against `cat, dog, bird`: 0 and 1 are cat and dog to both."""
    store, x, answered = pets
    labels = [str(i) for i in answered.tolist()]
    labels[:9] = [str(1 - int(t)) for t in labels[:9]]  # 9 rows both get wrong
    code, report = _compare(
        store, capsys, "1", "3", "--data", str(_write(tmp_path / "i.csv", x, labels))
    )
    assert code == 0
    assert report.get("metrics_unavailable") is None
    metrics = report["metrics"]
    assert metrics["a"]["accuracy"] == metrics["b"]["accuracy"] == pytest.approx(51 / 60)
