"""class_weight: imbalanced classes weighed in the training loss, checked in the spec."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="training needs torch: pip install 'aiaas[training]'")

import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.training.conftest import spec_dict, write_csv
from training.datasets import load_raw
from training.device import resolve_device
from training.errors import SpecError
from training.job import run_job
from training.prepare import prepare
from training.recipes.build import build_model
from training.spec import JobSpec, parse_spec
from training.trainer import Trainer, class_weights


def fraud_csv(path: Path, rows: int = 1500, share: float = 0.05) -> Path:
    """Two overlapping clusters, the second `share` of the rows: accuracy rewards ignoring it."""
    rng = np.random.default_rng(0)
    fraud = rng.random(rows) < share
    x = rng.normal(0.0, 1.0, size=(rows, 2)) + np.where(fraud[:, None], 1.0, 0.0)
    data = [
        [round(float(a), 4), round(float(b), 4), "fraud" if f else "ok"]
        for (a, b), f in zip(x, fraud, strict=True)
    ]
    return write_csv(path, ["amount", "hour", "kind"], data)


def spec(tmp_path: Path, **overrides: Any) -> JobSpec:
    dataset = {"path": str(fraud_csv(tmp_path / "fraud.csv")), "target": "kind"}
    base = spec_dict(
        "logistic", dataset=dataset, **({"epochs": 15, "learning_rate": 0.05} | overrides)
    )
    return parse_spec(base)


def fraud_recall(job: JobSpec) -> float:
    data = prepare(load_raw(job.dataset, "tabular"), job, "tabular")
    trainer = Trainer(job, data, resolve_device("cpu", 1), progress=False)
    model = trainer.fit(build_model(job, data)).model
    everything = np.concatenate([data.train.x, data.validation.x, data.test.x])
    truth = np.concatenate([data.train.y, data.validation.y, data.test.y])
    predicted = trainer.predict(model, everything).argmax(axis=1)
    fraud = data.labels.index("fraud")
    return float((predicted[truth == fraud] == fraud).mean())


def test_balanced_weights_find_the_minority_that_plain_loss_ignores(tmp_path: Path) -> None:
    plain = fraud_recall(spec(tmp_path))
    balanced = fraud_recall(spec(tmp_path, class_weight="balanced"))
    named = fraud_recall(spec(tmp_path, class_weight={"fraud": 19.0}))
    assert plain < 0.3, plain  # what the imbalance warning is about
    assert balanced > 0.6 and named > 0.6, (balanced, named)


def test_balanced_is_scikit_learns_and_a_mapping_weighs_what_it_names(tmp_path: Path) -> None:
    job = spec(tmp_path, class_weight="balanced")
    data = prepare(load_raw(job.dataset, "tabular"), job, "tabular")
    weights = class_weights(job, data)
    assert weights is not None
    expected = compute_class_weight("balanced", classes=np.arange(2), y=data.train.y)
    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-6)
    named = class_weights(spec(tmp_path, class_weight={"fraud": 4}), data)
    assert named is not None
    assert named.tolist() == [4.0 if label == "fraud" else 1.0 for label in data.labels]
    assert class_weights(spec(tmp_path), data) is None


def test_a_label_the_target_lacks_is_refused_with_the_classes(tmp_path: Path) -> None:
    job = spec(tmp_path, class_weight={"frad": 4})
    data = prepare(load_raw(job.dataset, "tabular"), job, "tabular")
    with pytest.raises(SpecError, match=r"names \['frad'\].*classes are \['fraud', 'ok'\]"):
        class_weights(job, data)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("auto", "must be 'balanced' or a mapping"),
        ({}, "must be 'balanced' or a mapping"),
        ({"fraud": 0}, "weight of class 'fraud' must be a positive number"),
        ({"fraud": True}, "weight of class 'fraud' must be a positive number"),
        ({"fraud": "high"}, "weight of class 'fraud' must be a positive number"),
        ({"fraud": float("nan")}, "weight of class 'fraud' must be a positive number"),
    ],
)
def test_bad_class_weights_name_the_field(tmp_path: Path, value: Any, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        spec(tmp_path, class_weight=value)


def test_a_regression_job_has_no_classes_to_weigh() -> None:
    with pytest.raises(SpecError, match="class_weight' weighs classes; a regression job"):
        parse_spec(spec_dict("linear", class_weight="balanced"))


def test_the_manifest_records_the_weights(tmp_path: Path) -> None:
    job = spec(tmp_path, class_weight="balanced", epochs=1)
    registry = Registry(LocalStore(tmp_path / "store"))
    result = run_job(job, registry, tmp_path / "run", publish_model=True, progress=False)
    manifest = json.loads(result.manifest.to_json())
    assert manifest["training"]["class_weight"] == "balanced"
