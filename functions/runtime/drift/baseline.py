"""A version's training baseline: per-feature bins and counts, and the prediction distribution.

Bins are open-ended: a feature keeps the interior quantile edges of its training values, so its
first bin is (-inf, e_1) and its last [e_last, inf). A shifted feature then piles into an end
bin (and PSI sees it) instead of falling off the histogram; values outside the training range
[low, high] are counted apart, as data quality. Discrete features keep fewer bins (repeated
quantiles are merged); every feature is padded to the same width with NaN edges, so one
vectorised comparison bins all features at once, and padded bins stay empty on both sides: no
value is `>=` NaN, so a served +inf lands in its feature's own last bin, as 1e6 would (padded
with +inf, `inf >= inf` counted it in a bin the feature does not have: a discrete feature's PSI
went from 0.01 to 0.72 when 10% of its rows were +inf instead of 1e6), and -inf in its first.

Missing values (NaN: a model published with --allow-nonfinite, or trained on a table with gaps,
takes them) are no value to bin: a feature's edges, counts and range are of its present values,
and `missing` counts its training rows that lacked it, which the report compares with the
share of served rows that do (report.py `with_missing`).

Written once per version, as `drift_baseline.json` beside the model (training writes it;
`aiaas baseline` writes it for a model published from elsewhere).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from functions.runtime.drift.categories import CategoryBaseline
from functions.runtime.drift.watched import BASELINE_FILE as BASELINE_FILE  # importers find it here
from functions.runtime.errors import BadRequest, ManifestError

DEFAULT_BINS = 10
CHUNK_ROWS = 1024


@dataclass(frozen=True)
class PredictionBaseline:
    """Training predictions: class shares (`labels`) or value bins (`edges`, open-ended), of
    `output` ("" in a baseline written before it was named: watched.binned_output)."""

    counts: np.ndarray
    labels: tuple[str, ...] = ()
    edges: np.ndarray | None = None
    output: str = ""

    def bin(self, values: np.ndarray) -> np.ndarray:
        """Counts of `values` (class indices, or scores/values) on these bins."""
        if self.edges is None:
            index = np.clip(values.astype(np.int64), 0, len(self.counts) - 1)
        else:
            index = (values[:, None] >= self.edges[None, :]).sum(1)
        return np.bincount(index, minlength=len(self.counts)).astype(np.int64)

    def to_dict(self) -> dict[str, object]:
        doc: dict[str, object] = (
            {"labels": list(self.labels), "counts": self.counts.tolist()}
            if self.edges is None
            else {"edges": _finite(self.edges), "counts": self.counts.tolist()}
        )
        if self.output:  # absent before it was named: such a baseline binned the first output
            doc["output"] = self.output
        return doc

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> PredictionBaseline:
        counts = np.asarray(data["counts"], dtype=np.int64)
        output = str(data.get("output", ""))
        if "edges" in data:
            edges = np.asarray(data["edges"], dtype=np.float64)
            if edges.shape != (len(counts) - 1,):
                raise ValueError("prediction edges do not match its counts")
            return cls(counts, edges=edges, output=output)
        labels = tuple(str(label) for label in data["labels"])  # type: ignore[attr-defined]
        if len(labels) != len(counts):
            raise ValueError("prediction labels do not match its counts")
        return cls(counts, labels=labels, output=output)


@dataclass(frozen=True)
class DriftBaseline:
    """Per feature: interior edges [F, B-1] (NaN padded), counts [F, B], training range;
    per string column, its categories (categories.py); `missing` [F]: training rows without
    the feature (NaN), absent from a document written before they were counted (read as 0)."""

    features: tuple[str, ...]
    edges: np.ndarray
    counts: np.ndarray
    low: np.ndarray
    high: np.ndarray
    prediction: PredictionBaseline | None
    rows: int
    categories: tuple[CategoryBaseline, ...] = ()
    missing: np.ndarray | None = None
    # Features the model's inputs hold at one value whatever is served (a tokenizer with no
    # unknown token: unknown_share), so they cannot drift; `aiaas monitor` says so.
    constant: tuple[str, ...] = ()
    # Why the predictions are not binned (an output that is not one row per row: fit.py).
    unwatched: str = ""
    # String columns of free text, not compared by category (categories.free_text).
    free_text: tuple[str, ...] = ()

    @property
    def missed(self) -> np.ndarray:
        """Training rows without each feature [F] (zeros for an old document)."""
        if self.missing is None:
            return np.zeros(self.width, dtype=np.int64)
        return self.missing

    @property
    def width(self) -> int:
        return len(self.features)

    @property
    def names(self) -> tuple[str, ...]:
        """Every monitored column: the binned features, then the string columns."""
        return (*self.features, *(c.name for c in self.categories))

    def bin_rows(self, rows: np.ndarray) -> np.ndarray:
        """Counts [F, B] of the non-NaN values of `rows` [N, F] on these bins; +-inf in a
        feature's end bins (its padding edges are NaN, which no value is at or above)."""
        # Rows at or above each edge, per feature: one comparison summed over the rows (~0.9 us
        # a row of 64 features; a per-row bin index, then bincount, costs ~3x that).
        at_or_above = np.zeros(self.edges.shape, dtype=np.int64)
        for start in range(0, len(rows), CHUNK_ROWS):  # bounds the [rows, F, B-1] temporary
            chunk = rows[start : start + CHUNK_ROWS, :, None]
            at_or_above += np.count_nonzero(chunk >= self.edges[None], axis=0)
        counted = len(rows) - np.isnan(rows).sum(0)  # NaN is below no edge: taken off bin 0
        counts = np.empty((self.width, self.edges.shape[1] + 1), dtype=np.int64)
        if self.edges.shape[1] == 0:
            counts[:, 0] = counted
            return counts
        counts[:, 0] = counted - at_or_above[:, 0]
        counts[:, 1:-1] = at_or_above[:, :-1] - at_or_above[:, 1:]
        counts[:, -1] = at_or_above[:, -1]
        return counts

    def to_json(self) -> str:
        doc = {
            "features": list(self.features),
            "edges": [_finite(row) for row in self.edges],
            "counts": self.counts.tolist(),
            "low": self.low.tolist(),
            "high": self.high.tolist(),
            "rows": self.rows,
            "prediction": None if self.prediction is None else self.prediction.to_dict(),
        }
        if self.categories:  # absent before string columns were monitored: still read
            doc["categories"] = [c.to_dict() for c in self.categories]
        if self.missed.any():  # absent before missing values were counted: still read
            doc["missing"] = self.missed.tolist()
        if self.constant:  # absent for every baseline before it, and where none is
            doc["constant"] = list(self.constant)
        if self.unwatched:
            doc["unwatched"] = self.unwatched
        if self.free_text:  # absent before free text was told from categories
            doc["free_text"] = list(self.free_text)
        return json.dumps(doc, allow_nan=False)

    @classmethod
    def from_json(cls, text: bytes | str) -> DriftBaseline:
        try:
            data = json.loads(text)
            counts = np.asarray(data["counts"], dtype=np.int64)
            edges = _padded([np.asarray(e, dtype=np.float64) for e in data["edges"]])
            features = tuple(str(name) for name in data["features"])
            low = np.asarray(data["low"], dtype=np.float64)
            high = np.asarray(data["high"], dtype=np.float64)
            raw = data.get("prediction")
            prediction = PredictionBaseline.from_dict(raw) if raw else None
            rows = int(data["rows"])
            categories = tuple(map(CategoryBaseline.from_dict, data.get("categories", [])))
            missing = np.asarray(data.get("missing", [0] * len(features)), dtype=np.int64)
            constant = tuple(str(name) for name in data.get("constant", []))
            unwatched = str(data.get("unwatched", ""))
            free_text = tuple(str(name) for name in data.get("free_text", []))
            if not features:  # every input a string column: the predictions are all it bins
                counts = counts.reshape(0, edges.shape[1] + 1)
        except (ValueError, KeyError, TypeError) as exc:
            raise ManifestError(f"{BASELINE_FILE} is not a valid drift baseline: {exc}") from None
        if counts.shape != (len(features), edges.shape[1] + 1) or low.shape != (len(features),):
            raise ManifestError(f"{BASELINE_FILE}: edges, counts and features do not match")
        if missing.shape != (len(features),) or (missing < 0).any() or (missing > rows).any():
            raise ManifestError(f"{BASELINE_FILE}: missing is not a count of rows per feature")
        return cls(
            features,
            edges,
            counts,
            low,
            high,
            prediction,
            rows,
            categories,
            missing,
            constant,
            unwatched,
            free_text,
        )


def build(
    rows: np.ndarray,
    features: tuple[str, ...],
    predictions: PredictionBaseline | None = None,
    bins: int = DEFAULT_BINS,
) -> DriftBaseline:
    """The baseline of training `rows` [N, F]: `bins` quantile bins per feature, fitted on its
    present values; its missing ones (NaN) counted apart. A feature missing from every row
    has nothing to bin: refused, by name (as infinity is)."""
    rows = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
    if len(features) != rows.shape[1]:
        raise BadRequest(f"{len(features)} feature names for rows of {rows.shape[1]} values")
    if len(rows) < 2:
        raise BadRequest("a drift baseline needs at least 2 rows of training data")
    absent = np.isnan(rows)
    _check_present(rows, absent, features)
    edges = _padded(
        [quantile_edges(c[~gap], bins) for c, gap in zip(rows.T, absent.T, strict=True)]
    )
    low = np.where(absent, np.inf, rows).min(0)
    high = np.where(absent, -np.inf, rows).max(0)
    missing = absent.sum(0).astype(np.int64)
    empty = DriftBaseline(features, edges, np.zeros(0), low, high, predictions, len(rows))
    counts = empty.bin_rows(rows)
    return DriftBaseline(
        features, edges, counts, low, high, predictions, len(rows), missing=missing
    )


def _check_present(rows: np.ndarray, absent: np.ndarray, features: tuple[str, ...]) -> None:
    """BadRequest naming the features with an infinite value, or with no value at all."""
    infinite = [features[c] for c in np.flatnonzero(np.isinf(rows).any(0))]
    if infinite:
        raise BadRequest(
            f"the training rows hold infinity in {', '.join(infinite[:5])}: a drift baseline "
            "bins finite values (and counts missing ones, NaN); drop or fix those rows"
        )
    empty = [features[c] for c in np.flatnonzero(absent.all(0))]
    if empty:
        raise BadRequest(
            f"{', '.join(empty[:5])} {'is' if len(empty) == 1 else 'are'} missing in every one "
            f"of the {len(rows)} training rows: a drift baseline has no value to compare served "
            "ones with; give rows that hold some"
        )


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """The distinct interior quantile edges cutting `values` into `bins` near-equal bins. A
    minimum that holds a bin's share of the values or more (a constant feature; the zeros of a
    count or of a text's unknown-token share) is a bin of its own, closed by an edge just above
    it: merged into the next bin, a shift from 0 to 0.1 in 24% of the rows showed no drift."""
    low = values.min()
    inner = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    edges = inner[inner > low]
    if not len(edges) or np.mean(values == low) >= 1 / bins:
        edges = np.append(edges, np.nextafter(low, np.inf))
    return np.unique(edges)


def value_bins(values: np.ndarray, bins: int = DEFAULT_BINS) -> PredictionBaseline:
    """Training predictions of a regressor (or a score) on their own quantile bins."""
    values = np.asarray(values, dtype=np.float64).ravel()
    edges = quantile_edges(values, bins)
    empty = PredictionBaseline(np.zeros(len(edges) + 1, dtype=np.int64), edges=edges)
    return PredictionBaseline(empty.bin(values), edges=edges)


def label_shares(classes: np.ndarray, labels: tuple[str, ...]) -> PredictionBaseline:
    """Training predictions of a classifier: rows per predicted class index."""
    counts = np.bincount(np.asarray(classes, dtype=np.int64), minlength=len(labels))
    return PredictionBaseline(counts[: len(labels)].astype(np.int64), labels=labels)


def _padded(edges: list[np.ndarray]) -> np.ndarray:
    """The features' edges as one table [F, B-1], the shorter rows padded with NaN: an edge no
    value is at or above (not even +inf), so the padded bins stay empty (bin_rows)."""
    width = max((len(e) for e in edges), default=0)
    table = np.full((len(edges), width), np.nan)
    for row, values in zip(table, edges, strict=True):
        row[: len(values)] = values
    return table


def _finite(edges: np.ndarray) -> list[float]:
    return [float(e) for e in edges if np.isfinite(e)]
