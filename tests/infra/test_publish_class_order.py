"""`aiaas publish` of a classifier whose classes are those of the version the bare name serves in
another order (a retrain that ordered them anew, or --labels given out of the model's order).
Predictions, compare, the shadow and a rollout's agreement match classes by name, so nothing
said it, while class scores read by position and a file of class indices mean another class
at each place. Now publish says so, and nothing where the order is the same or the classes
differ. Real ONNX models published by the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from infra.cli.main import main
from tests import onnx_factory

NOTE = (
    "note: pets:1 has the same classes in another order (its class 0 is 'cat', this version's "
    "'dog'): predictions name them as before, but class scores read by position (the 'logits' "
    "output, an OIP tensor) and a file of class indices read another class there; if this "
    "model's columns are in 1's order, publish it again with --labels cat,dog"
)


def _reversed(source: Path, path: Path, extra: int = 0) -> Path:
    """`source` (x @ W + B) with its class columns reversed, `extra` columns that never win."""
    model = onnx.load(source)
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)[..., ::-1]
        far = -100.0 if array.ndim == 1 else 0.0
        pad = np.full((*array.shape[:-1], extra), far, np.float32)
        init.CopyFrom(numpy_helper.from_array(np.concatenate([array, pad], -1), init.name))
    onnx.save(model, path)
    return path


def _publish(
    store: Path, model: Path, labels: str, capsys: pytest.CaptureFixture[str]
) -> list[str]:
    argv = ["--store", str(store), "publish", str(model), "--name", "pets", "--json"]
    assert main([*argv, "--labels", labels]) == 0
    return list(json.loads(capsys.readouterr().out)["notes"])


def test_classes_in_another_order_than_the_served_versions_are_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    first = onnx_factory.linear_classifier(tmp_path / "a.onnx", classes=2, seed=7)
    assert NOTE not in " ".join(_publish(store, first, "cat,dog", capsys))
    retrained = _reversed(first, tmp_path / "b.onnx")
    assert NOTE in _publish(store, retrained, "dog,cat", capsys)
    assert main(["--store", str(store), "promote", "pets", "1"]) == 0
    capsys.readouterr()
    again = _publish(store, first, "cat,dog", capsys)  # the served order: nothing to say
    assert not [n for n in again if "another order" in n], again
    grown = _reversed(first, tmp_path / "c.onnx", extra=1)  # another class set: compare says
    assert not [n for n in _publish(store, grown, "dog,cat,bird", capsys) if "another order" in n]
    # What the note leaves to them: compare (the shadow's and a rollout's rule) by name. The
    # retrain agrees on every row; its file with --labels in 1's order (every answer another
    # class) on none, and publish has nothing to see there (the same order as 1's).
    mislabelled = _publish(store, retrained, "cat,dog", capsys)
    assert not [n for n in mislabelled if "another order" in n], mislabelled
    rows = tmp_path / "rows.csv"
    x = np.random.default_rng(1).normal(size=(30, 4))
    rows.write_text("x_0,x_1,x_2,x_3\n" + "\n".join(",".join(map(str, r)) for r in x) + "\n")
    for version, rate in (("2", 1.0), ("5", 0.0)):
        argv = ["--store", str(store), "compare", "pets", "1", version, "--data", str(rows)]
        assert main([*argv, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["agreement"]["rate"] == rate, version
