"""`aiaas publish` of class-score-shaped outputs without `--labels`: the version answers the
raw output (no `predictions`, no `?top_k`), and publish now says so, by the labels the model's
last version answered with when it had them (a trained classifier's file published again)."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory


def publish(capsys: pytest.CaptureFixture[str], store: Path, path: Path, *argv: str) -> str:
    assert main(["--store", str(store), "publish", str(path), "--name", "m", *argv]) == 0
    return capsys.readouterr().out


def test_republished_without_labels_names_the_labels_it_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, path = tmp_path / "store", onnx_factory.linear_classifier(tmp_path / "m.onnx")
    first = publish(capsys, store, path)  # [N, 3] logits, no labels: answered as they are
    assert "output 'logits' [-1, 3] is answered as it is; if it holds 3 class scores, " in first
    assert "--labels a,b,... makes predict answer labels (and ?top_k)" in first
    assert "warning" not in first
    assert "answered as it is" not in publish(capsys, store, path, "--labels", "cat,dog,eel")
    again = publish(capsys, store, path)
    assert (
        "warning: m:2 answered labels (cat, dog, eel); this version has none and answers output "
        "'logits' as it is: if it holds those class scores, publish again with --labels "
        "cat,dog,eel"
    ) in again
    assert Registry(LocalStore(store)).manifest("m", "3").labels == ()  # a note: published
    said = publish(capsys, store, path, "--task", "other")  # said so: nothing to tell
    assert "answered as it is" not in said


def test_a_regressor_s_single_value_gets_no_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "r.onnx", classes=1)  # [N, 1]
    assert "answered as it is" not in publish(capsys, tmp_path / "store", path)


def test_a_kmeans_distances_beside_its_label_get_no_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """skl2onnx's KMeans answers `label` (an ArgMin) and `scores` [N, k] (distances): the note
    advised --labels, which publish then refuses (the label is the farthest class)."""
    from skl2onnx import to_onnx
    from sklearn.cluster import KMeans
    from sklearn.datasets import load_iris

    x = load_iris(return_X_y=True)[0].astype("float32")
    path = tmp_path / "km.onnx"
    path.write_bytes(to_onnx(KMeans(3, n_init=2, random_state=0).fit(x), x[:1]).SerializeToString())
    store = tmp_path / "store"
    classifier = onnx_factory.linear_classifier(tmp_path / "c.onnx")
    assert "class scores from output" in publish(capsys, store, classifier, "--labels", "a,b,c")
    said = publish(capsys, store, path)  # m:1 answered 3 labels: no warning either
    assert "answered as it is" not in said and "warning" not in said
