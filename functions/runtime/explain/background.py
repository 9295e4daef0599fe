"""The background an explanation compares a row with: a weighted k-means summary of the data.

Kernel SHAP's cost grows with the background's size, so a version keeps a few cluster centres
of its training data, each weighted by the share of rows it stands for (as `shap.kmeans` does),
in `background.json` beside its model. Training writes it; `aiaas baseline` writes it for a
model published from elsewhere. It is written once, like everything in a version.

A string (categorical) column has no mean, and masking it needs a value the model knows: a
model with one keeps k-means centres of its rows with the strings one-hot, each centre holding
its cluster's mean numbers and most frequent value in every string column (real strings, in
about the shares the data has them). Its file is format 2 (string cells); a numeric one is
format 1, which readers from before formats (no "format" key) read too. In memory a string
column holds numbers, indices into that column's `categories`, as Kernel SHAP's rows need.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from functions.runtime.errors import BadRequest, ManifestError
from functions.runtime.version_files import BACKGROUND_FILE as BACKGROUND_FILE

DEFAULT_CLUSTERS = 10
MAX_ROWS = 256  # more than this buys little accuracy for a lot of model calls
INDICATOR = 2.0  # a string column's one-hot height in its rows' k-means, numbers standardised
FORMAT = 2  # the newest format read: 2 may hold strings, 1 (or none given) numbers only


@dataclass(frozen=True)
class Background:
    """Rows [B, F] (float64) and their weights [B] (summing to 1), and where they came from;
    a string column's values are indices into `categories[column]`."""

    rows: np.ndarray
    weights: np.ndarray
    source: str
    categories: Mapping[int, tuple[str, ...]] = field(default_factory=dict)

    def to_json(self) -> str:
        table: list[list[float | str]] = self.rows.tolist()
        for column, values in self.categories.items():
            for row in table:
                row[column] = values[int(row[column])]
        return json.dumps(
            {
                "format": 2 if self.categories else 1,
                "rows": table,
                "weights": self.weights.tolist(),
                "source": self.source,
            },
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, text: bytes | str, width: int, strings: Sequence[int] = ()) -> Background:
        """Parse and check a stored background for a model whose rows have `width` values,
        the `strings` columns strings."""
        try:
            data = json.loads(text)
            version = data.get("format", 1)
            table = data["rows"]
            weights = np.asarray(data["weights"], dtype=np.float64)
            source = str(data.get("source", ""))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ManifestError(f"{BACKGROUND_FILE} is not a valid background: {exc}") from None
        if version not in (1, 2):
            raise ManifestError(
                f"{BACKGROUND_FILE} is format {version!r}; this aiaas reads formats 1 to "
                f"{FORMAT}: upgrade it to explain this version"
            )
        rows, categories = _decode(table, width, strings)
        if not 0 < len(rows) <= MAX_ROWS:
            raise ManifestError(
                f"{BACKGROUND_FILE} holds {len(rows)} rows; at most {MAX_ROWS} are kept"
            )
        if weights.shape != (len(rows),) or not np.isfinite(rows).all():
            raise ManifestError(f"{BACKGROUND_FILE} has bad weights or non-finite values")
        if not np.isfinite(weights).all() or (weights < 0).any() or not weights.any():
            # [0, 0] divided by its sum was NaN (a 500 blaming the model); [1e308, 1e308]
            # summed to infinity, every weight 0, and the base value 0 with a 200
            raise ManifestError(
                f"{BACKGROUND_FILE} has weights {_shown(weights)}: each must be a finite "
                "number of 0 or more, and one more than 0; make it again with `aiaas baseline`"
            )
        if not np.isfinite(weights.sum()):  # huge but finite weights keep their proportions
            weights = weights / weights.max()
        return cls(rows, weights / weights.sum(), source, categories)


def _shown(weights: np.ndarray) -> str:
    return "[" + ", ".join(f"{w:g}" for w in weights[:5]) + (", ...]" if len(weights) > 5 else "]")


def _decode(
    table: object, width: int, strings: Sequence[int]
) -> tuple[np.ndarray, dict[int, tuple[str, ...]]]:
    """Stored rows as float rows [B, width], the `strings` columns numbered in order of first
    appearance; a ManifestError unless every row has `width` cells, strings where they go."""
    cells = np.asarray(table, dtype=object)
    if cells.ndim != 2 or cells.shape[1] != width:
        raise ManifestError(
            f"{BACKGROUND_FILE} holds rows of shape {list(cells.shape)}; the model reads "
            f"{width} values a row"
        )
    categories = {}
    for column in strings:
        if not all(isinstance(v, str) for v in cells[:, column]):
            raise ManifestError(
                f"{BACKGROUND_FILE} has no string values in column {column}, a string input "
                "of the model: make it again with `aiaas baseline` (format 2)"
            )
        values = tuple(dict.fromkeys(cells[:, column]))
        index = {v: i for i, v in enumerate(values)}
        cells[:, column] = [index[v] for v in cells[:, column]]
        categories[column] = values
    try:
        rows = cells.astype(np.float64)
    except (ValueError, TypeError):
        raise ManifestError(
            f"{BACKGROUND_FILE} has a string where the model reads numbers"
        ) from None
    return rows, categories


def summarize(
    data: np.ndarray,
    clusters: int = DEFAULT_CLUSTERS,
    seed: int = 0,
    strings: Sequence[int] = (),
    picked: Sequence[int] = (),
) -> Background:
    """k-means centres of `data` [N, F] weighted by cluster size; the rows themselves if few.
    With `strings` columns (`data` an object array), see `_summarize_table`. A `picked`
    column's centre is its cluster's most frequent value (`InputColumns.picked`)."""
    if strings:
        return _summarize_table(np.asarray(data, dtype=object), clusters, seed, strings, picked)
    data = np.asarray(data, dtype=np.float64).reshape(len(data), -1)
    if len(data) == 0:
        raise BadRequest("a background needs at least one row of data")
    _check_finite(data)
    clusters = max(1, min(clusters, MAX_ROWS))
    if len(data) <= clusters:
        weights = np.full(len(data), 1.0 / len(data))
        return Background(data, weights, f"all {len(data)} rows of the data")
    # On values whose squares overflow (1e155 and up), k-means' distances were inf, inf/inf a
    # NaN probability and a traceback, so such a column is halved some hundreds of times
    # (exact: a power of two), the centres its clusters' own means. Each column by its own
    # factor: one shared by all made the ordinary columns 1e-200, their distances 0, and the
    # background two centres of the huge column's values.
    factors = _factors(data)
    centres, labels = _kmeans(data / factors, clusters, np.random.default_rng(seed))
    if (factors != 1.0).any():
        centres = np.array([_mean(data[labels == k], factors) for k in range(len(centres))])
    _pick(centres, data, labels, picked)
    sizes = np.bincount(labels).astype(np.float64)
    return Background(
        centres, sizes / sizes.sum(), f"k-means ({len(centres)} centres) of {len(data)} rows"
    )


def _pick(centres: np.ndarray, data: np.ndarray, labels: np.ndarray, picked: Sequence[int]) -> None:
    """Each centre's `picked` columns set to its cluster's most frequent value there (ties:
    the smallest): ids and flags are names, and their mean one nobody gave (id 45.3, a mask
    of 0.5 that rounded to 0 though half the rows had it set)."""
    for column in picked:
        for k in range(len(centres)):
            values, counts = np.unique(data[labels == k, column], return_counts=True)
            centres[k, column] = values[np.argmax(counts)]


def _check_finite(data: np.ndarray) -> None:
    if not np.isfinite(data).all():
        raise BadRequest("the background data holds NaN or infinity; drop or fill those rows")


LARGE = 2.0**256  # a column past this is scaled down first: its squares, sums may overflow


def _factors(numbers: np.ndarray) -> np.ndarray:
    """[F] powers of two, one a column: 1 for a column of values under LARGE (whose
    arithmetic is then what it always was, byte for byte), else the one that brings its
    largest magnitude into [1, 2), exactly (2**1023 for 1.7e308: 2**1024 is no float)."""
    largest = np.abs(numbers).max(axis=0) if len(numbers) else np.zeros(numbers.shape[1:])
    return np.where(largest < LARGE, 1.0, np.ldexp(1.0, np.frexp(largest)[1] - 1))


def _mean(numbers: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """The column means of `numbers` [N, F], summed scaled down by `factors` (`_factors`):
    the sum of 3000 values of 1e306 overflows, their mean does not."""
    return np.asarray((numbers / factors).mean(axis=0) * factors)


def _summarize_table(
    table: np.ndarray, clusters: int, seed: int, strings: Sequence[int], picked: Sequence[int]
) -> Background:
    """Rows with string columns: k-means over the numbers (standardised) and the strings (an
    indicator of INDICATOR height a value), each centre its cluster's mean numbers and most
    frequent strings. Another category is as far as 2 standard deviations in 2 numeric
    columns, so clusters split by category first and their weights keep the categories'
    shares (over the numbers alone every centre's most frequent value was the commonest: a
    background of one category; at height 1, 0.63-0.93 of the weight for a 0.50 category)."""
    if len(table) == 0:
        raise BadRequest("a background needs at least one row of data")
    numeric = [c for c in range(table.shape[1]) if c not in set(strings)]
    texts = [[str(v) for v in table[:, c]] for c in strings]
    try:
        numbers = table[:, numeric].astype(np.float64)
    except (ValueError, TypeError) as exc:
        raise BadRequest(
            f"the background data holds a non-number in a numeric column: {exc}"
        ) from None
    _check_finite(numbers)
    clusters = max(1, min(clusters, MAX_ROWS))
    if len(table) <= clusters:
        labels = np.arange(len(table))
        source = f"all {len(table)} rows of the data"
    else:  # standardised (scale-free), scaled down first where the squares would overflow
        shrunk = numbers / _factors(numbers)
        spread = shrunk.std(axis=0)
        scaled = (shrunk - shrunk.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
        points = np.hstack([scaled, *(_indicators(values) for values in texts)])
        labels = _kmeans(points, clusters, np.random.default_rng(seed))[1]
        source = (
            f"k-means ({labels.max() + 1} centres) of {len(table)} rows, string columns by "
            "their most frequent value in each cluster"
        )
    background = _clustered(numbers, texts, labels, numeric, strings, source)
    if len(table) > clusters and picked:  # else the rows themselves: values given
        wide = np.zeros(table.shape)
        wide[:, numeric] = numbers
        _pick(background.rows, wide, labels, picked)
    return background


def _indicators(values: list[str], most: int = 32) -> np.ndarray:
    """[N, <= most] 0/1 columns: one a value, the commonest `most - 1`, the rest together."""
    common = {v: i for i, (v, _) in enumerate(Counter(values).most_common(most - 1))}
    index = np.array([common.get(v, len(common)) for v in values])
    return np.asarray(INDICATOR * np.eye(len(common) + 1)[index])


def _clustered(
    numbers: np.ndarray,
    texts: list[list[str]],
    labels: np.ndarray,
    numeric: list[int],
    strings: Sequence[int],
    source: str,
) -> Background:
    """One row per label: its rows' mean numbers and most frequent strings (ties: the first
    seen), weighted by its share of the rows."""
    sizes = np.bincount(labels).astype(np.float64)
    rows = np.zeros((len(sizes), len(numeric) + len(strings)))
    factors = _factors(numbers)
    rows[:, numeric] = [_mean(numbers[labels == k], factors) for k in range(len(sizes))]
    categories = {}
    for column, values in zip(strings, texts, strict=True):
        per_label: list[Counter[str]] = [Counter() for _ in sizes]
        for label, value in zip(labels, values, strict=True):
            per_label[label][value] += 1
        modes = [counts.most_common(1)[0][0] for counts in per_label]
        kept = tuple(dict.fromkeys(modes))
        rows[:, column] = [kept.index(m) for m in modes]
        categories[column] = kept
    return Background(rows, sizes / sizes.sum(), source, categories)


def _kmeans(
    data: np.ndarray, k: int, rng: np.random.Generator, rounds: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's algorithm from a k-means++ start: (centres, each row's centre), empty centres
    dropped."""
    centres = _plus_plus(data, k, rng)
    labels = np.zeros(len(data), dtype=np.int64)
    for _ in range(rounds):
        labels = _nearest(data, centres)
        moved = np.array(
            [
                data[labels == c].mean(axis=0) if (labels == c).any() else centres[c]
                for c in range(len(centres))
            ]
        )
        if np.allclose(moved, centres):
            break
        centres = moved
    labels = _nearest(data, centres)
    keep = np.bincount(labels, minlength=len(centres)) > 0
    renumber = np.cumsum(keep) - 1
    return centres[keep], renumber[labels]


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
