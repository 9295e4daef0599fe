"""The background an explanation compares a row with: a weighted k-means summary of the data.

Kernel SHAP's cost grows with the background's size, so a version keeps a few cluster centres
of its training data, each weighted by the share of rows it stands for (as `shap.kmeans` does),
in `background.json` beside its model. Training writes it; `aiaas baseline` writes it for a
model published from elsewhere. It is written once, like everything in a version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from functions.runtime.errors import BadRequest, ManifestError

BACKGROUND_FILE = "background.json"
DEFAULT_CLUSTERS = 10
MAX_ROWS = 256  # more than this buys little accuracy for a lot of model calls


@dataclass(frozen=True)
class Background:
    """Rows [B, F] (float64) and their weights [B] (summing to 1), and where they came from."""

    rows: np.ndarray
    weights: np.ndarray
    source: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "rows": self.rows.tolist(),
                "weights": self.weights.tolist(),
                "source": self.source,
            },
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, text: bytes | str, width: int) -> Background:
        """Parse and check a stored background for a model whose rows have `width` values."""
        try:
            data = json.loads(text)
            rows = np.asarray(data["rows"], dtype=np.float64)
            weights = np.asarray(data["weights"], dtype=np.float64)
            source = str(data.get("source", ""))
        except (ValueError, KeyError, TypeError) as exc:
            raise ManifestError(f"{BACKGROUND_FILE} is not a valid background: {exc}") from None
        if rows.ndim != 2 or rows.shape[1] != width or not 0 < len(rows) <= MAX_ROWS:
            raise ManifestError(
                f"{BACKGROUND_FILE} holds rows of shape {list(rows.shape)}; the model reads "
                f"{width} values a row (and at most {MAX_ROWS} rows are kept)"
            )
        if weights.shape != (len(rows),) or not np.isfinite(rows).all() or (weights < 0).any():
            raise ManifestError(f"{BACKGROUND_FILE} has bad weights or non-finite values")
        return cls(rows, weights / weights.sum(), source)


def summarize(data: np.ndarray, clusters: int = DEFAULT_CLUSTERS, seed: int = 0) -> Background:
    """k-means centres of `data` [N, F] weighted by cluster size; the rows themselves if few."""
    data = np.asarray(data, dtype=np.float64).reshape(len(data), -1)
    if len(data) == 0:
        raise BadRequest("a background needs at least one row of data")
    if not np.isfinite(data).all():
        raise BadRequest("the background data holds NaN or infinity; drop or fill those rows")
    clusters = max(1, min(clusters, MAX_ROWS))
    if len(data) <= clusters:
        weights = np.full(len(data), 1.0 / len(data))
        return Background(data, weights, f"all {len(data)} rows of the data")
    centres, sizes = _kmeans(data, clusters, np.random.default_rng(seed))
    return Background(
        centres, sizes / sizes.sum(), f"k-means ({len(centres)} centres) of {len(data)} rows"
    )


def _kmeans(
    data: np.ndarray, k: int, rng: np.random.Generator, rounds: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's algorithm from a k-means++ start; (centres, rows per centre), empty ones dropped."""
    centres = _plus_plus(data, k, rng)
    labels = np.zeros(len(data), dtype=np.int64)
    for _ in range(rounds):
        labels = _nearest(data, centres)
        moved = np.array(
            [
                data[labels == c].mean(axis=0) if (labels == c).any() else centres[c]
                for c in range(k)
            ]
        )
        if np.allclose(moved, centres):
            break
        centres = moved
    sizes = np.bincount(_nearest(data, centres), minlength=k).astype(np.float64)
    keep = sizes > 0
    return centres[keep], sizes[keep]


def _plus_plus(data: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centres = [data[rng.integers(len(data))]]
    for _ in range(1, k):
        distance = ((data[:, None, :] - np.array(centres)[None]) ** 2).sum(-1).min(axis=1)
        total = distance.sum()
        if total == 0:  # fewer distinct rows than clusters
            break
        centres.append(data[rng.choice(len(data), p=distance / total)])
    return np.array(centres)


def _nearest(data: np.ndarray, centres: np.ndarray) -> np.ndarray:
    distance = (data**2).sum(1)[:, None] - 2 * data @ centres.T + (centres**2).sum(1)[None, :]
    return np.asarray(distance.argmin(axis=1))
