"""One metric, one name: the macro F1 a manifest stores as `f1` reads `macro_f1`, as `aiaas
compare` names it, with the same digits, in the card, `aiaas train`, `aiaas publish`,
`aiaas versions`, `aiaas show` and `aiaas compare` (the card said "f1" and compare "macro_f1"
for the same number). Manifests keep their stored key, so old stores read as before."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli import compare_commands, publish_card, publish_report
from infra.cli.main import main
from tests.onnx_factory import linear_classifier, manifest_for
from training import card, command

STORED = {"accuracy": 0.95652, "f1": 0.965871, "rows": 46, "confusion_matrix": [[1]]}
SHOWN = "accuracy=0.9565 macro_f1=0.9659"


def test_training_and_publish_say_macro_f1_as_compare_does() -> None:
    held_out = {**STORED, "data": "wine.csv", "target": "cultivar"}
    manifest = SimpleNamespace(
        metrics={"test": STORED, "held_out": held_out},
        extras={"parity": {"max_abs_diff": 1e-7, "rows": 46, "tolerance": 1e-4},
                "quantization": {}},
        preprocessing={},
        training={"device": "cpu", "epochs_run": 3, "seconds_per_epoch": 0.1},
    )  # fmt: skip
    texts = {
        "card": card._metric_rows({"test": STORED})[0],
        "train": command.summary_lines(SimpleNamespace(name="wine"), manifest, {"total_s": 1})[0],
        "publish card": "\n".join(publish_card._metrics(held_out)),
        "publish": publish_report.held_out_text(manifest),  # type: ignore[arg-type]
        "compare": "\n".join(
            compare_commands._metric_lines(
                {"metrics": {"rows": 46, "label": "y", "a": {"macro_f1": 0.965871},
                             "b": {"macro_f1": 0.965871}, "delta": {"macro_f1": 0.0}}},
                True,
            )
        ),
    }  # fmt: skip
    for where, text in list(texts.items())[:4]:
        assert SHOWN in text and "f1 " not in text and " f1=" not in text, where
    assert "macro_f1  A 0.9659  B 0.9659" in texts["compare"]


def test_versions_and_show_read_an_old_manifests_f1_as_macro_f1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = Registry(LocalStore(tmp_path / "store"))
    path = linear_classifier(tmp_path / "m.onnx")
    manifest = manifest_for(path, "wine", "1", labels=("a", "b", "c"))
    registry.publish(dataclasses.replace(manifest, metrics={"test": STORED}), path)
    assert registry.manifest("wine", "1").metrics["test"]["f1"] == STORED["f1"]  # key kept
    assert main(["--store", registry.store.uri, "versions", "wine"]) == 0
    assert SHOWN in capsys.readouterr().out
    assert main(["--store", registry.store.uri, "show", "wine:1"]) == 0
    assert f"    test: {SHOWN} (46 rows)" in capsys.readouterr().out.splitlines()
