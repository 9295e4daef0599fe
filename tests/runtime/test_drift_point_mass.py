"""A feature most of whose training values sit on its minimum (the zeros of a count, of an
amount, of a text's unknown-token share): the minimum is a bin of its own. Its quantile edges
collapsed onto one edge above the zeros, so a shift of a quarter of the rows from 0 to 0.1
fell in the zeros' bin and was no drift (text monitoring hunt: unknown_share PSI 0.18)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from functions.runtime.drift.fit import fit
from tests.runtime.test_drift_missing import _model, _report

SPARSE = 3  # the zero-inflated column


def _rows(seed: int, n: int, shifted: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.normal(0, 1, (n, 4))
    sparse = np.where(rng.random(n) < 0.9, 0.0, rng.uniform(0.2, 1.0, n))
    moved = rng.random(n) < shifted
    rows[:, SPARSE] = np.where(moved & (sparse == 0), 0.1, sparse)
    return rows.astype(np.float32)


def test_a_shift_off_the_zeros_is_drift_and_the_same_zeros_are_not(tmp_path: Path) -> None:
    model = _model(tmp_path, finite=True)
    base = fit(model, _rows(1, 2000))
    edges = base.edges[SPARSE][np.isfinite(base.edges[SPARSE])]
    assert edges[0] == np.nextafter(0.0, 1.0)  # the zeros' own bin
    assert _report(model, base, _rows(2, 2000))[SPARSE] < 0.1
    assert _report(model, base, _rows(3, 2000, shifted=0.25))[SPARSE] > 0.2
