"""Training stores each numeric version's drift baseline beside its model (issue #18)."""

from __future__ import annotations

import numpy as np
import pytest

from functions.runtime.drift.baseline import BASELINE_FILE, DriftBaseline
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore, NotFound
from tests.training.conftest import Published


def stored(published: Published, name: str) -> DriftBaseline:
    key = f"{version_prefix(name, '1')}/{BASELINE_FILE}"
    return DriftBaseline.from_json(LocalStore(published.store_dir).get_bytes(key))


@pytest.mark.parametrize(("name", "features"), [("tiny-logistic", 4), ("tiny-linear", 10)])
def test_a_tabular_version_carries_its_training_bins(
    published: Published, name: str, features: int
) -> None:
    base = stored(published, name)
    manifest = published.registry.manifest(name, "1")
    assert base.width == features and base.features == manifest.features
    assert (base.counts.sum(1) == base.rows).all() and base.rows > 50
    assert base.prediction is not None and base.prediction.counts.sum() == base.rows
    if manifest.labels:  # classifier: the shares of each predicted label
        assert base.prediction.labels == manifest.labels and base.prediction.edges is None
    else:  # regressor: its predictions' own quantile bins
        assert base.prediction.edges is not None and len(base.prediction.edges) >= 5
    # Quantile bins: a feature with many values has ~10 bins of about a tenth each; one with
    # few (diabetes' `sex`, iris' 0.1 cm steps) keeps fewer, merged at repeated quantiles.
    many = (base.counts > 0).sum(1) >= 8
    assert many.any()
    assert np.max(base.counts[many] / base.rows) < 0.3  # ties in 102 iris rows: 27


def test_a_text_version_has_no_drift_baseline(published: Published) -> None:
    key = f"{version_prefix('tiny-text', '1')}/{BASELINE_FILE}"
    with pytest.raises(NotFound):
        LocalStore(published.store_dir).get_bytes(key)
