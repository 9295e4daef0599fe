"""PSI and Jensen-Shannon distance between a live histogram and its training baseline.

- PSI = sum((a - e) * ln(a / e)) over bins, with `a`, `e` the live and training shares, each
  floored at `EPS` so an empty bin scores large instead of infinite (the usual practice).
  Rules of thumb: < 0.1 stable, 0.1-0.2 moderate, > 0.2 drifted (`DEFAULT_THRESHOLD`).
- JS distance = sqrt(JS divergence) in base 2, so it lies in [0, 1]; the shares are not
  floored (0 * log 0 = 0). It equals `scipy.spatial.distance.jensenshannon(a, e, base=2)`.
Rows are features (or one row for the predictions); bins that are empty on both sides (a
discrete feature's padding) add nothing to either.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-4
DEFAULT_THRESHOLD = 0.2


def shares(counts: np.ndarray) -> np.ndarray:
    """Counts [..., B] as shares of their row (an empty row is all zeros)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(-1, keepdims=True)
    return np.asarray(np.divide(counts, total, out=np.zeros_like(counts), where=total > 0))


def psi(live: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Population stability index per row of two count tables [..., B]."""
    a = np.maximum(shares(live), EPS)
    e = np.maximum(shares(expected), EPS)
    return np.asarray(((a - e) * np.log(a / e)).sum(-1))


def js_distance(live: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (base 2) per row of two count tables [..., B]."""
    p, q = shares(live), shares(expected)
    m = (p + q) / 2
    divergence = (_kl(p, m) + _kl(q, m)) / 2
    return np.asarray(np.sqrt(np.maximum(divergence, 0.0)))


def _kl(p: np.ndarray, m: np.ndarray) -> np.ndarray:
    ratio = np.divide(p, m, out=np.ones_like(p), where=p > 0)
    return np.asarray((p * np.log2(ratio)).sum(-1))
