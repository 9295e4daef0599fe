"""`aiaas train --publish` of a classifier whose classes are those of the version the name serves
in another order says what `aiaas publish` says of it (tests/infra/test_publish_class_order.py),
from the same code (functions/runtime/class_order.py): before, train said it in other words as
a warning and publish as a note. Real CLI: a version published from an ONNX file with --labels
`stay,churn` served at production, then a job trained on a CSV of the same two classes (its
labels `churn, stay`, the data's order)."""

from __future__ import annotations

import json
from pathlib import Path

from infra.cli.main import main
from tests import onnx_factory
from tests.torchless import torch_or_skip
from tests.training.test_retrain_changes import _labels, _spec, _train, _week

SAID = (
    "churn:1 has the same classes in another order (its class 0 is 'stay', this version's "
    "'churn'): predictions name them as before, but class scores read by position (the {!r} "
    "output, an OIP tensor) and a file of class indices read another class there"
)


def test_train_publish_says_the_classes_are_the_served_versions_in_another_order(
    tmp_path: Path,
) -> None:
    torch_or_skip()  # it trains
    store = str(tmp_path / "store")
    served = onnx_factory.linear_classifier(tmp_path / "served.onnx", classes=2, seed=3)
    argv = ["--store", store, "publish", str(served), "--name", "churn", "--labels", "stay,churn"]
    assert main(argv) == 0
    assert main(["--store", store, "promote", "churn", "1"]) == 0
    _spec(tmp_path)
    _week(tmp_path, 1, ["Lyon", "Nice", "Paris"], ["churn", "stay"])
    code, out, err = _train(tmp_path, "--publish", "--json")
    assert code == 0, err
    assert (_labels(tmp_path, "1"), _labels(tmp_path, "2")) == (
        ["stay", "churn"],
        ["churn", "stay"],
    )
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    said = SAID.format(manifest["postprocessing"]["scores_output"])
    assert f"note: {said}\n" in err, err  # publish's note, less its --labels advice
    assert manifest["extras"]["changes"]["notes"] == [said]
    assert not [w for w in json.loads(out)["warnings"] if "class" in w], out  # said once
    card = (tmp_path / "run" / "card" / "card.md").read_text()
    assert f"- note: {said}" in card.replace("\\", ""), card
