"""`aiaas versions` of a model trained several times: each line says the test metrics to rank
by and the settings that changed between runs (found iterating on a wine classifier: seven
versions listed `accuracy=0.9565` or `0.913` and nothing else, so telling the runs apart, and
the imbalanced set's macro F1, took opening each manifest)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.onnx_factory import linear_classifier, manifest_for


def _trained(accuracy: float, f1: float, **changed: Any) -> dict[str, Any]:
    training: dict[str, Any] = {
        "recipe": {"name": "mlp", "params": {"hidden": [32, 16], "dropout": 0.0}},
        "dataset": {"path": "wine.csv", "target": "cultivar"},
        "epochs": 8,
        "learning_rate": 0.01,
        "seed": 0,
    }
    params = training["recipe"]["params"]
    for key, value in changed.items():
        (params if key in params else training)[key] = value
    return {"training": training, "metrics": {"test": {"accuracy": accuracy, "f1": f1}}}


def test_versions_show_f1_and_what_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = Registry(LocalStore(tmp_path / "store"))
    path = linear_classifier(tmp_path / "m.onnx")
    runs = {
        "1": _trained(0.9565, 0.9659),
        "2": _trained(0.9565, 0.9659, hidden=[64, 64]),
        "3": _trained(0.913, 0.9306, learning_rate=0.001),
        "4": {},  # published from a file: metrics and settings unknown
    }
    for version, changed in runs.items():
        manifest = manifest_for(path, "wine", version, labels=("a", "b", "c"))
        registry.publish(dataclasses.replace(manifest, **changed), path)
    assert main(["--store", registry.store.uri, "versions", "wine"]) == 0
    lines = {
        line.split()[0]: line.split()[3:] for line in capsys.readouterr().out.splitlines() if line
    }
    assert lines["1"] == [
        "accuracy=0.9565",
        "macro_f1=0.9659",
        "hidden=[32,16]",
        "learning_rate=0.01",
    ]
    assert lines["2"] == [
        "accuracy=0.9565",
        "macro_f1=0.9659",
        "hidden=[64,64]",
        "learning_rate=0.01",
    ]
    assert lines["3"] == [
        "accuracy=0.913",
        "macro_f1=0.9306",
        "hidden=[32,16]",
        "learning_rate=0.001",
    ]
    assert lines["4"] == []


def test_versions_survive_a_foreign_training_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A manifest another tool wrote (a recipe named by a string, a list of params) is listed,
    not a traceback for the whole model; its text cannot drive the terminal (an ESC sequence
    in a store someone else writes would recolour or retitle the reader's terminal)."""
    registry = Registry(LocalStore(tmp_path / "store"))
    path = linear_classifier(tmp_path / "m.onnx")
    foreign = {"recipe": "mlp", "dataset": ["x"], "export": 1, "epochs": 3}
    evil = {"recipe": {"params": [1]}, "dataset": {"path": "\x1b]0;pwned\x07a.csv"}, "epochs": 4}
    for version, training in (("1", foreign), ("2", evil)):
        manifest = manifest_for(path, "wine", version, labels=("a", "b", "c"))
        registry.publish(dataclasses.replace(manifest, training=training), path)
    assert main(["--store", registry.store.uri, "versions", "wine"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "data=\\x1b]0;pwned\\x07a.csv" in out and "epochs=3" in out


def test_versions_show_the_metrics_publish_data_measured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model of one's own gets its metrics from `aiaas publish --data`, which stores them as
    `held_out`: `aiaas versions` showed them for trained versions only, so two published
    versions (a logistic regression and a boosted one) could not be ranked in the list."""
    store = tmp_path / "store"
    path = linear_classifier(tmp_path / "m.onnx", features=2)
    rows = np.random.default_rng(0).normal(size=(30, 2)).round(3)
    held = tmp_path / "held.csv"
    held.write_text("a,b,label\n" + "".join(f"{x},{y},{i % 3}\n" for i, (x, y) in enumerate(rows)))
    publish = ["--store", str(store), "publish", str(path), "--name", "m", "--labels", "0,1,2"]
    assert main([*publish, "--features", "a,b", "--data", str(held)]) == 0
    assert main([*publish, "--features", "a,b"]) == 0  # no --data: no metrics
    capsys.readouterr()
    held_out = Registry(LocalStore(store)).manifest("m", "1").metrics["held_out"]
    assert main(["--store", str(store), "versions", "m"]) == 0
    lines = {
        line.split()[0]: line.split()[3:] for line in capsys.readouterr().out.splitlines() if line
    }
    assert lines["1"] == [
        f"accuracy={held_out['accuracy']:.4g}",
        f"macro_f1={held_out['f1']:.4g}",
    ]
    assert lines["2"] == []


def test_versions_tell_runs_on_two_files_of_one_path_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Retraining from one spec on each week's file: `data=wine.csv` read alike for every run,
    so which versions learned from which file took opening each manifest. The file's sha256
    (`dataset.file_sha256`, recorded since 2026-12-07) is shown where it differs."""
    registry = Registry(LocalStore(tmp_path / "store"))
    path = linear_classifier(tmp_path / "m.onnx")
    week1, week2 = "a1" * 32, "b2" * 32
    for version, digest in (("1", week1), ("2", week1), ("3", week2), ("4", None)):
        changed = _trained(0.9565, 0.9659, epochs=8 + int(version))
        dataset = {"rows": 178} if digest is None else {"file_sha256": digest, "rows": 178}
        manifest = manifest_for(path, "wine", version, labels=("a", "b", "c"))
        registry.publish(dataclasses.replace(manifest, dataset=dataset, **changed), path)
    assert main(["--store", registry.store.uri, "versions", "wine"]) == 0
    lines = {
        line.split()[0]: line.split()[5:] for line in capsys.readouterr().out.splitlines() if line
    }
    assert lines["1"] == [f"data_sha256={week1[:12]}", "epochs=9"]
    assert lines["2"] == [f"data_sha256={week1[:12]}", "epochs=10"]
    assert lines["3"] == [f"data_sha256={week2[:12]}", "epochs=11"]
    assert lines["4"] == ["data_sha256=-", "epochs=12"]  # trained before it was recorded
