"""Which epoch's weights a job keeps: the best on the monitored validation metric, a tie on it
going to the lower validation loss, and the run's summary and card saying which and why.

Before: a tie kept the FIRST epoch. On separable or imbalanced data the accuracy plateaus at
once, so a 30-epoch job exported epoch 2's weights while its last line showed epoch 30's
val_loss, and nothing said the later epochs were thrown away.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.cli.main import main
from tests.torchless import torch_or_skip
from tests.training.conftest import blobs_rows, write_csv


def _kept(history: dict[str, list[float]], metric: str) -> int:
    """The rule: best metric, then lowest val_loss, then earliest."""
    epochs = range(1, len(history["val_loss"]) + 1)
    return max(epochs, key=lambda e: (history[metric][e - 1], -history["val_loss"][e - 1], -e))


def _train(tmp_path: Path, capsys: pytest.CaptureFixture[str], **top: Any) -> tuple[str, Any]:
    torch_or_skip()  # it trains
    write_csv(tmp_path / "blobs.csv", ["a", "b", "colour"], blobs_rows(150))
    spec = {
        "name": "blobs",
        "task": "classification",
        "dataset": {"path": str(tmp_path / "blobs.csv"), "target": "colour"},
        "recipe": {"name": "logistic"},
        "learning_rate": 0.1,
        "seed": 0,
        "export": {"exporter": "torchscript"},  # which epoch is kept is the point: not dynamo
        **top,
    }
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(spec))
    store = tmp_path / "store"
    argv = ["--store", str(store), "train", str(tmp_path / "job.yaml"), "--publish"]
    assert main([*argv, "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    version = store / "models" / "blobs" / "versions" / "1"
    manifest = json.loads((version / "manifest.json").read_text())
    return out, (manifest["training"], (version / "card" / "card.md").read_text())


def test_a_plateaued_accuracy_keeps_the_later_epoch_with_the_lower_loss(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, (training, card) = _train(tmp_path, capsys, epochs=12)
    history = training["history"]
    accuracy = history["val_accuracy"]
    first_best = accuracy.index(max(accuracy)) + 1
    kept = _kept(history, "val_accuracy")
    assert kept > first_best  # the separable blobs plateau; the loss goes on falling
    assert training["best_epoch"] == kept
    assert training["kept_because"] == "best val_accuracy, then val_loss"
    said = f"kept the weights of epoch {kept} (best val_accuracy, then val_loss)"
    assert f"  {said}\n" in out and said in card


def test_early_stopping_breaks_ties_alike_and_stops_no_later(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Patience counts from the last epoch accuracy itself improved, as before: a loss that
    goes on falling on a plateau moves the kept epoch, not the stop."""
    stop = {"patience": 3, "monitor": "accuracy"}
    _, (training, _) = _train(tmp_path, capsys, epochs=30, early_stopping=stop)
    history = training["history"]
    accuracy = history["val_accuracy"]
    improved = [
        e
        for e in range(1, len(accuracy) + 1)
        if accuracy[e - 1] > max(accuracy[: e - 1], default=-1)
    ]
    assert training["stopped_early"] and training["epochs_run"] == improved[-1] + 3
    assert training["best_epoch"] == _kept(history, "val_accuracy") > improved[-1]
    assert training["kept_because"] == "best val_accuracy, then val_loss"


def test_a_monitored_loss_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stop = {"patience": 50, "monitor": "loss"}
    out, (training, _) = _train(tmp_path, capsys, epochs=3, early_stopping=stop)
    kept = min(range(1, 4), key=lambda e: training["history"]["val_loss"][e - 1])
    assert f"  kept the weights of epoch {kept} (best val_loss)\n" in out
