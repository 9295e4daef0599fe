"""The drift job: sum a window of live snapshots and compare them with the training baseline."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import orjson

from functions.runtime.drift.baseline import DriftBaseline
from functions.runtime.drift.categories import CategoryBaseline
from functions.runtime.drift.distance import DEFAULT_THRESHOLD, js_distance, psi
from functions.runtime.drift.snapshots import snapshot_prefix
from functions.runtime.store import ObjectStore

log = logging.getLogger("aiaas.drift")

PREDICTION = "(prediction)"  # the row of the prediction distribution in a report
# Below this many served rows a bin, PSI is sampling noise: 50 rows of the training
# distribution itself score over 0.2 on one of 10 features 99% of the time (100 rows: 28%,
# 200: none in 200 trials), so a low-traffic model would alarm every hour on unshifted data.
MIN_ROWS_PER_BIN = 20


@dataclass(frozen=True)
class Window:
    """The live counts of one version over [since, until] (epoch seconds)."""

    rows: int
    counts: np.ndarray
    nan: np.ndarray
    below: np.ndarray
    above: np.ndarray
    prediction: np.ndarray | None
    snapshots: int
    categories: tuple[np.ndarray, ...] = ()  # per string column: counts by category


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    psi: float
    js: float
    nan: int
    out_of_range: int
    drifted: bool
    needed: int = 0  # served rows before its PSI is judged (drifted is False below them)


def read_window(
    store: ObjectStore, model: str, version: str, since: float, until: float
) -> list[dict[str, object]]:
    """The snapshots of `model:version` that ended within [since, until]."""
    docs = []
    for day in _days(store, snapshot_prefix(model, version), since, until):
        for key in store.list_keys(f"{snapshot_prefix(model, version)}/{day:%Y-%m-%d}"):
            named = _named_end(day, key)
            if named is not None and not since - 1 < named <= until:
                continue  # its name says when it ended: not read (an hour's job read the day)
            try:
                doc = orjson.loads(store.get_bytes(key))
                end = float(doc["end"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                # One bad object (truncated, another release's) is left out, named: it stopped
                # the whole hourly run, every model's drift with it, naming no key.
                log.warning("drift snapshot %s left out: it does not read (%s)", key, exc)
                continue
            if since <= end <= until:
                docs.append(doc)
    return docs


LISTED_DAYS = 7  # a window over this many days lists the version's day folders once


def _days(store: ObjectStore, prefix: str, since: float, until: float) -> list[date]:
    """The days of [since, until] to list: each of a short window's, but a long one's only
    those with a folder (`aiaas monitor --window 3650d` listed 3,650 day prefixes, one request
    each on S3, for the few days that held snapshots)."""
    first = datetime.fromtimestamp(since, UTC).date()
    last = datetime.fromtimestamp(until, UTC).date()
    if (last - first).days <= LISTED_DAYS:
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]
    held = []
    for name in store.list_dirs(prefix):
        try:
            day = date.fromisoformat(name) if len(name) == len("YYYY-MM-DD") else None
        except ValueError:
            day = None
        if day is not None and first <= day <= last:
            held.append(day)
    return sorted(held)


def _named_end(day: date, key: str) -> float | None:
    """The second a snapshot ended, from its name (`<day>/<HHMMSS>-<id>.json`, monitor.py: the
    end floored to the second), in epoch seconds; None for a name not of that form."""
    stem = key.rsplit("/", 1)[-1]
    if len(stem) < 7 or stem[6] != "-" or not stem[:6].isdigit():
        return None
    hours, minutes, seconds = int(stem[:2]), int(stem[2:4]), int(stem[4:6])
    if hours > 23 or minutes > 59 or seconds > 59:
        return None
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
    return midnight + hours * 3600 + minutes * 60 + seconds


def total(baseline: DriftBaseline, docs: list[dict[str, object]]) -> Window:
    """The sum of `docs`, skipping any whose shape is not this baseline's."""
    counts = np.zeros_like(baseline.counts)
    width = baseline.width
    nan, below, above = (np.zeros(width, dtype=np.int64) for _ in range(3))
    prediction = None if baseline.prediction is None else np.zeros_like(baseline.prediction.counts)
    categories = [np.zeros_like(c.counts) for c in baseline.categories]
    rows = used = 0
    for doc in docs:
        part = np.asarray(doc["counts"], dtype=np.int64)
        if part.size == 0:  # no feature binned (every input a string column): JSON's [] is 1-D
            part = part.reshape(0, counts.shape[-1])
        if part.shape != counts.shape:
            continue
        counts += part
        nan += np.asarray(doc["nan"], dtype=np.int64)
        below += np.asarray(doc["below"], dtype=np.int64)
        above += np.asarray(doc["above"], dtype=np.int64)
        if prediction is not None and doc.get("prediction") is not None:
            prediction += np.asarray(doc["prediction"], dtype=np.int64)
        _add_categories(categories, doc.get("categories"))
        rows += int(doc["rows"])  # type: ignore[call-overload]
        used += 1
    return Window(rows, counts, nan, below, above, prediction, used, tuple(categories))


def _add_categories(totals: list[np.ndarray], part: object) -> None:
    """A snapshot's category counts into `totals`, when they are of these categories."""
    if not isinstance(part, list) or len(part) != len(totals):
        return
    counts = [np.asarray(c, dtype=np.int64) for c in part]
    if all(c.shape == t.shape for c, t in zip(counts, totals, strict=True)):
        for total_, count in zip(totals, counts, strict=True):
            total_ += count


def with_missing(
    baseline: DriftBaseline, counts: np.ndarray, nan: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Live and training counts with missing values (NaN) as one more bin: served rows' against
    the training rows' (`missing`, 0 in a baseline written before they were counted). A
    feature that starts arriving null shifts its PSI as a shifted value would, instead of
    vanishing from its bins; one that was as often missing in training does not."""
    missing = baseline.missed.astype(baseline.counts.dtype)[:, None]
    return np.hstack([counts, nan[:, None]]), np.hstack([baseline.counts, missing])


def rows_needed(baseline: DriftBaseline) -> int:
    """The served rows a window needs before its PSI can tell drift from sampling noise: 20 a
    bin, the missing values' one too where training lacked values (its PSI has 11 bins a
    feature then, `with_missing`: 200 rows judged it)."""
    bins = int(baseline.counts.shape[-1]) + int(baseline.missed.any())
    return MIN_ROWS_PER_BIN * bins


def category_rows_needed(baseline: DriftBaseline, column: CategoryBaseline) -> int:
    """The same for a string column, whose bins are its categories: 20 a category training
    filled (a column of 100 categories judged on 200 rows scores a PSI near 0.9 on rows that
    training itself gave, and on 500 rows over 0.2 nine times in ten), as PSI expects them
    (`CategoryBaseline.expected`: a one-off value's rows are `(new)`'s)."""
    filled = int(np.count_nonzero(column.expected))
    return max(rows_needed(baseline), MIN_ROWS_PER_BIN * filled)


def prediction_rows_needed(baseline: DriftBaseline) -> int:
    """The same for `(prediction)`: a classifier of many classes has as many bins, 20 rows a
    label training predicted."""
    assert baseline.prediction is not None
    filled = int(np.count_nonzero(baseline.prediction.counts))
    return max(rows_needed(baseline), MIN_ROWS_PER_BIN * filled)


def compare(
    baseline: DriftBaseline, window: Window, threshold: float = DEFAULT_THRESHOLD
) -> list[FeatureDrift]:
    """PSI and JS distance per feature, then for the predictions; drifted: PSI > threshold,
    in a window of at least `rows_needed` rows (a string column: `category_rows_needed`)."""
    needed = rows_needed(baseline)
    if window.rows < needed:
        threshold = np.inf
    live, expected = with_missing(baseline, window.counts, window.nan)
    psis = psi(live, expected)
    jss = js_distance(live, expected)
    report = [
        FeatureDrift(
            name,
            float(psis[i]),
            float(jss[i]),
            int(window.nan[i]),
            int(window.below[i] + window.above[i]),
            bool(psis[i] > threshold),
            needed,
        )
        for i, name in enumerate(baseline.features)
    ]
    for base, live in zip(baseline.categories, window.categories, strict=True):
        p, j = float(psi(live, base.expected)), float(js_distance(live, base.expected))
        # outside: values training never saw ((new); with an old baseline, rare ones too)
        rows = category_rows_needed(baseline, base)
        drifted = p > threshold and window.rows >= rows
        report.append(FeatureDrift(base.name, p, j, 0, int(live[-1]), drifted, rows))
    if baseline.prediction is not None and window.prediction is not None:
        p = float(psi(window.prediction, baseline.prediction.counts))
        j = float(js_distance(window.prediction, baseline.prediction.counts))
        rows = prediction_rows_needed(baseline)
        report.append(
            FeatureDrift(PREDICTION, p, j, 0, 0, p > threshold and window.rows >= rows, rows)
        )
    return report


def label_shares(baseline: DriftBaseline, window: Window) -> list[tuple[str, float, float]]:
    """A classifier's predictions by label: (label, training share, served share), as many
    as training predicted first; [] for a regressor's or when no prediction was counted."""
    base = baseline.prediction
    if base is None or not base.labels or window.prediction is None:
        return []
    served = int(window.prediction.sum())
    if not served:
        return []
    expected, live = base.counts / max(1, int(base.counts.sum())), window.prediction / served
    order = np.argsort(-base.counts, kind="stable")
    return [(base.labels[i], float(expected[i]), float(live[i])) for i in order]


def needed_per_row(baseline: DriftBaseline) -> np.ndarray:
    """The served rows each row of `timeline` needs before its PSI is judged [F], as `compare`
    asks them: `rows_needed` a feature, `category_rows_needed` a string column, 20 a label
    training predicted for `(prediction)`."""
    needed = rows_needed(baseline)
    rows = [needed] * baseline.width + [
        category_rows_needed(baseline, c) for c in baseline.categories
    ]
    if baseline.prediction is not None:
        rows.append(prediction_rows_needed(baseline))
    return np.asarray(rows, dtype=np.int64)


def timeline(
    baseline: DriftBaseline, docs: list[dict[str, object]], since: float, until: float, steps: int
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray, np.ndarray]:
    """(step end times [S], the rows' names [F], PSI [S, F], served rows [S]) over `steps`
    equal slices of the window: every column, then `(prediction)` where it is binned (as in the
    table: a model whose only drift was in its predictions got a blank PNG beside a DRIFT
    verdict); NaN where a slice holds no snapshot. A slice of fewer rows than
    `needed_per_row` holds sampling noise (the PNG greys it)."""
    predicted = baseline.prediction is not None
    names = (*baseline.names, PREDICTION) if predicted else baseline.names
    ends = np.linspace(since, until, steps + 1)[1:]
    slot = np.searchsorted(ends, [float(doc["end"]) for doc in docs])  # type: ignore[arg-type]
    values = np.full((steps, len(names)), np.nan)
    served = np.zeros(steps, dtype=np.int64)
    for step in range(steps):
        window = total(baseline, [doc for doc, s in zip(docs, slot, strict=True) if s == step])
        served[step] = window.rows
        if window.rows:
            numeric = psi(*with_missing(baseline, window.counts, window.nan))
            pairs = zip(window.categories, baseline.categories, strict=True)
            strings = [psi(live, base.expected) for live, base in pairs]
            values[step, : len(baseline.names)] = np.concatenate(
                [numeric, np.asarray(strings, dtype=np.float64)]
            )
            if baseline.prediction is not None and window.prediction is not None:  # as compare
                values[step, -1] = psi(window.prediction, baseline.prediction.counts)
    return ends, names, values, served
