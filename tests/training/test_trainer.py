"""The trainer: seeds, early stopping, best-weights checkpoint, devices, diverging losses."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="training needs torch: pip install 'aiaas[training]'")

from pathlib import Path

import numpy as np
import torch

from tests.training.conftest import tiny_spec
from training.datasets import load_raw
from training.device import cpu_threads, resolve_device
from training.errors import SpecError, TrainingError
from training.metrics import classification_metrics, regression_metrics
from training.prepare import prepare
from training.recipes.build import build_model
from training.spec import JobSpec
from training.trainer import Trainer, TrainResult, load_checkpoint


def _fit(spec: JobSpec, checkpoint_dir: Path | None = None) -> tuple[Trainer, TrainResult]:
    kind = "tabular"
    data = prepare(load_raw(spec.dataset, kind), spec, kind)
    trainer = Trainer(
        spec, data, resolve_device("cpu", 1), progress=False, checkpoint_dir=checkpoint_dir
    )
    return trainer, trainer.fit(build_model(spec, data))


def test_same_seed_same_weights() -> None:
    spec = tiny_spec("logistic", epochs=2)
    first, second = _fit(spec)[1].model.state_dict(), _fit(spec)[1].model.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    other = _fit(tiny_spec("logistic", epochs=2, seed=1))[1].model.state_dict()
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_early_stopping_keeps_the_best_weights(tmp_path: Path) -> None:
    # A tiny learning rate barely moves the validation loss: patience 1 stops almost at once.
    spec = tiny_spec(
        "logistic",
        epochs=30,
        learning_rate=1e-6,
        early_stopping={"patience": 1, "monitor": "accuracy"},
    )
    trainer, result = _fit(spec, tmp_path)
    assert result.stopped_early and len(result.history) < 30
    # The best accuracy; a tie on it goes to the lower validation loss (test_kept_epoch.py).
    history = result.history
    assert result.best_epoch == max(
        range(1, len(history) + 1),
        key=lambda e: (history[e - 1].val_metric, -history[e - 1].val_loss, -e),
    )
    _, metrics = trainer.evaluate(result.model, trainer.data.validation)
    assert metrics["accuracy"] == pytest.approx(result.history[result.best_epoch - 1].val_metric)
    # The checkpoint on disk holds those same weights (npz, no pickle).
    assert result.checkpoint is not None and result.checkpoint.is_file()
    fresh = load_checkpoint(build_model(spec, trainer.data), result.checkpoint)
    for key, value in result.model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_learning_rate_schedules_move_the_rate() -> None:
    _, result = _fit(tiny_spec("logistic", epochs=4, learning_rate=0.1, schedule="cosine"))
    rates = [r.learning_rate for r in result.history]
    assert rates[0] == 0.1 and rates == sorted(rates, reverse=True) and rates[-1] < 0.1
    _, result = _fit(
        tiny_spec(
            "logistic",
            epochs=4,
            learning_rate=0.1,
            schedule={"name": "step", "step_size": 2, "gamma": 0.5},
        )
    )
    assert [round(r.learning_rate, 6) for r in result.history] == [0.1, 0.1, 0.05, 0.05]


def test_a_diverging_loss_stops_the_job() -> None:
    spec = tiny_spec("linear", epochs=3, learning_rate=1e12, optimizer="sgd")
    with pytest.raises(TrainingError, match=r"training loss became (nan|inf); lower learning_rate"):
        _fit(spec)


def test_device_selection() -> None:
    setup = resolve_device("auto")
    if torch.cuda.is_available():
        assert setup.device.type == "cuda" and setup.amp and setup.pin_memory
    else:
        assert setup.device.type == "cpu" and not setup.amp and not setup.pin_memory
        with pytest.raises(
            SpecError, match="spec field 'device' is 'cuda' but torch sees no CUDA GPU"
        ):
            resolve_device("cuda")
    assert resolve_device("cpu").device.type == "cpu"
    assert cpu_threads(0, 1000) == 1 and cpu_threads(3, 1000) == 3


def test_metrics() -> None:
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, 2.0]])
    metrics = classification_metrics(np.array([0, 1, 1, 1]), logits, 2)
    assert metrics["accuracy"] == 0.75
    assert metrics["confusion_matrix"] == [[1, 0], [1, 2]]
    assert metrics["f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    reg = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]))
    assert reg["mae"] == pytest.approx(2 / 3) and reg["rmse"] == pytest.approx(np.sqrt(4 / 3))
    assert reg["r2"] == pytest.approx(1 - 4 / 2)


def test_macro_f1_leaves_out_a_class_neither_true_nor_predicted() -> None:
    # A rare class the test split never holds, never predicted: scikit-learn's macro F1 (and
    # `aiaas compare`'s) averages over the other classes; counting it as F1 0 read 0.33 for 0.49.
    logits = np.array([[2.0, 0.0, 0.0]] * 53 + [[2.0, 0.0, 0.0]] * 2)
    truth = np.array([0] * 53 + [1] * 2)
    metrics = classification_metrics(truth, logits, 3)
    assert metrics["f1"] == pytest.approx((2 * 53 / (55 + 53) + 0.0) / 2)
    assert metrics["confusion_matrix"][2] == [0, 0, 0]
