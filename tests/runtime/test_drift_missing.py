"""A feature with gaps in training: its baseline counts them, fitted on the present values, and
served rows as often missing are no drift (before, training counted none, so an unchanged 10%
null column scored a PSI over the threshold); one that becomes 60% null is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.drift.baseline import DriftBaseline, build, quantile_edges
from functions.runtime.drift.fit import fit
from functions.runtime.drift.live import LiveHistograms
from functions.runtime.drift.report import compare, total
from functions.runtime.errors import BadRequest
from functions.runtime.model import LoadedModel
from tests import onnx_factory

LABELS = ("a", "b", "c")
GAPPY = 1  # the column with missing values


def _model(tmp_path: Path, *, finite: bool) -> LoadedModel:
    path = onnx_factory.linear_classifier(tmp_path / f"m{finite}.onnx", features=4)
    manifest = onnx_factory.manifest_for(path, "credit", "1", labels=LABELS, finite=finite)
    return LoadedModel(manifest, path)


def _rows(seed: int, n: int, missing: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = np.stack(
        [rng.normal(5, 2, n), rng.exponential(1.0, n), rng.uniform(-1, 1, n), rng.normal(0, 1, n)],
        axis=1,
    ).astype(np.float32)
    rows[rng.random(n) < missing, GAPPY] = np.nan
    return rows


def _report(model: LoadedModel, base: DriftBaseline, rows: np.ndarray) -> list[float]:
    """Served `rows` through the live counter, in requests of 50, then the report's PSI."""
    live = LiveHistograms(base, model.manifest)
    for start in range(0, len(rows), 50):
        batch = {"x": rows[start : start + 50]}
        live.record(batch, model.predict(batch))
    doc = live.snapshot()
    assert doc is not None
    report = compare(base, total(base, [json.loads(json.dumps(doc))]))
    return [r.psi for r in report[:4]]


@pytest.fixture
def loose(tmp_path: Path) -> LoadedModel:
    return _model(tmp_path, finite=False)  # published with --allow-nonfinite


def test_a_column_as_often_missing_as_in_training_is_no_drift(loose: LoadedModel) -> None:
    rows = _rows(1, 2000, 0.10)
    base = fit(loose, rows)
    gaps = np.isnan(rows[:, GAPPY])
    assert base.missed.tolist() == [0, int(gaps.sum()), 0, 0] and 150 < gaps.sum() < 250
    # Bins and range of the present values only: no spike of filled values, no NaN edge.
    present = rows[~gaps, GAPPY].astype(np.float64)
    edges = base.edges[GAPPY]
    assert np.array_equal(edges[np.isfinite(edges)], quantile_edges(present, 10))
    assert base.counts[GAPPY].sum() == len(present)
    assert (base.low[GAPPY], base.high[GAPPY]) == (present.min(), present.max())
    again = DriftBaseline.from_json(base.to_json())
    assert np.array_equal(again.missed, base.missed)

    same = _report(loose, base, _rows(2, 2000, 0.10))
    assert max(same) < 0.05, same  # was > 0.2 on the gappy column: training counted no NaN
    more = _report(loose, base, _rows(3, 2000, 0.60))
    assert more[GAPPY] > 0.2 and max(more[:GAPPY] + more[GAPPY + 1 :]) < 0.05, more


def test_an_old_baseline_without_missing_counts_reads_as_none(loose: LoadedModel) -> None:
    base = fit(loose, _rows(1, 1000, 0.0))
    doc = json.loads(base.to_json())
    assert "missing" not in doc  # nothing missing: the document is as it always was
    old = DriftBaseline.from_json(json.dumps(doc))
    assert old.missed.tolist() == [0, 0, 0, 0]
    psis = _report(loose, old, _rows(2, 1000, 0.10))
    assert psis[GAPPY] > 0.2 and max(psis[:GAPPY] + psis[GAPPY + 1 :]) < 0.05, psis
    doc["missing"] = [0, 2000, 0, 0]  # more than its rows: not a count
    with pytest.raises(Exception, match="missing is not a count of rows per feature"):
        DriftBaseline.from_json(json.dumps(doc))


def test_gaps_a_model_cannot_take_and_a_column_never_present_are_refused(
    tmp_path: Path, loose: LoadedModel
) -> None:
    rows = _rows(1, 200, 0.10)
    with pytest.raises(BadRequest, match="takes finite numbers only") as info:
        fit(_model(tmp_path, finite=True), rows)
    assert "--allow-nonfinite" in info.value.message
    rows[:, 3] = np.nan
    with pytest.raises(BadRequest) as info:
        fit(loose, rows)
    assert info.value.message.startswith("x_3 is missing in every one of the 200 training rows")
    rows[:, 3], rows[0, 0] = 0.0, np.inf
    with pytest.raises(BadRequest, match="hold infinity in f0"):
        build(rows, ("f0", "f1", "f2", "f3"))
