"""The live side: histograms of served rows on a version's baseline bins, cheap per request.

A request only appends references to its (already validated) feature rows and outputs to a
buffer (~0.2 us); the rows are binned in one vectorised pass per flush or every `FOLD_ROWS`
rows, which costs ~1.3 us a row of 64 features (bench/drift_cost.py). A text model's texts are
tokenized again there, into the two numbers of `text.py` (by the model's own pad, unknown
token and attention mask). A lone value (a text model's `{"inputs": "a text"}`, an OIP tensor
of shape []) is one row, as the model reads it.

A request the histograms cannot read (a detector's outputs whose size changes with the call do
not stack with another request's; a row of no value to bin) fails its fold: the fold then bins
each request alone and drops only those that fail, said once a process for a version. Before,
the error turned the version's monitoring off until a restart, and its counts held were lost.

Threads: `aiaas serve` records on its pool's threads while the monitor's flush thread takes a
snapshot. A request appends one (rows, output) pair to one list and takes no lock; a fold takes
the pairs before an index and deletes them (each one step under the GIL, and in free-threaded
builds under the list's own lock), so a pair appended meanwhile stays for the next. The counts
change only under `_folding`, one fold at a time; a snapshot holds it from its fold to its
reset: no row is counted twice, or reset unwritten.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from functions.runtime.codecs.ties import tie_winners
from functions.runtime.drift.baseline import DriftBaseline
from functions.runtime.drift.images import image_features, image_layout
from functions.runtime.drift.text import fed_features, token_ids
from functions.runtime.drift.watched import binned_output
from functions.runtime.dtypes import BY_NAME
from functions.runtime.input_columns import InputColumns, by_column, input_columns
from functions.runtime.manifest import ModelManifest
from functions.runtime.text_input import TextFeeds

T = TypeVar("T")
Labels = np.ndarray | None  # a request's label output, where the model answered one
Held = tuple[np.ndarray, np.ndarray, Labels]  # a request's rows, its output, its labels
Requested = tuple[Mapping[str, np.ndarray], np.ndarray, Labels]  # as Held, its inputs whole
FOLD_ROWS = 1024  # rows held before binning: bounds memory, and the pause (~1.3 ms) of one fold
log = logging.getLogger("aiaas.drift")
_SAID: set[str] = set()  # the versions a request was not counted of, said once a process


def not_counted(ref: str) -> None:
    """Says that a request of version `ref` was not counted, with the error being handled
    (its traceback), once a process for a version: the others are counted, the version stays
    monitored, and a client sending such requests does not write a line each."""
    if ref in _SAID:
        return
    _SAID.add(ref)
    log.exception(
        "drift counts of a request of %s dropped (the others are counted; said once)", ref
    )


@dataclass(frozen=True)
class Binned:
    """The counts of some held requests, added to a version's at once (see `LiveHistograms`)."""

    rows: int
    counts: np.ndarray
    nan: np.ndarray
    below: np.ndarray
    above: np.ndarray
    predicted: np.ndarray | None
    categories: list[np.ndarray]


class LiveHistograms:
    """Counts [F, B] of served rows, NaN and out-of-range counts [F], prediction counts."""

    def __init__(
        self, baseline: DriftBaseline, manifest: ModelManifest, text: TextFeeds | None = None
    ) -> None:
        self.baseline = baseline
        self.manifest = manifest
        self.text = text
        # The pad, unknown and mask of the model's own vocabulary (text.py).
        self.special = token_ids(text) if text is not None else None
        self.input = manifest.inputs[0].name
        # An image of any size: binned as its channels' statistics and its size (images.py).
        image = image_layout(manifest, baseline.features) if text is None else None
        self.layout = image[0] if image is not None else None
        # A text model's requests, or one with an input a column's, whole: made rows at a fold.
        # Numeric columns are binned on the baseline's edges, string ones by category.
        many = by_column(manifest) and not text
        every = input_columns(manifest) if many else None
        self.columns = every.numeric() if every is not None else None
        cells = string_cells(every) if every is not None else {}
        self._strings = [cells[c.name] for c in baseline.categories]  # (input, column) of each
        self._stripped = {s.name for s in manifest.inputs if s.strip}  # as the model reads them
        # Each with its output and the model's own label output (None where not answered).
        self._requests: list[Requested] = []
        # The output the baseline's predictions were fitted on (watched.binned_output).
        fitted = baseline.prediction.output if baseline.prediction is not None else ""
        self.output = binned_output(manifest, fitted)
        # The model's own label output: it settles exactly tied best scores at a fold, as
        # predict settles them (codecs/ties.py); "" (never an output's name) where it has none.
        post = manifest.postprocessing
        self.label = (post.label_output or "") if post is not None else ""
        # One input's rows binned as the model reads them (its float type), as `fit` bins the
        # training rows: a simple JSON body decodes to float64, whose 0.2 is below float32 0.2.
        plain = text is None and self.layout is None and self.columns is None
        self._read_as = read_as(manifest.inputs[0].dtype) if plain else None
        # Per request, only references: all the work is done on the lot in `fold`.
        self._rows: list[Held] = []
        self._held = 0  # rows in either list (about: see `_fold`)
        self._folding = threading.Lock()  # the counts: one fold (or snapshot) at a time
        self.reset()

    def reset(self) -> None:
        width, bins = self.baseline.width, self.baseline.edges.shape[1] + 1
        self.rows = 0
        self.counts = np.zeros((width, bins), dtype=np.int64)
        self.nan = np.zeros(width, dtype=np.int64)
        self.below = np.zeros(width, dtype=np.int64)
        self.above = np.zeros(width, dtype=np.int64)
        prediction = self.baseline.prediction
        self.predicted = None if prediction is None else np.zeros_like(prediction.counts)
        self.categories = [np.zeros_like(c.counts) for c in self.baseline.categories]

    @property
    def idle(self) -> bool:
        """Nothing answered since the last snapshot (counted, held, or being binned)."""
        return (
            not self.rows and not self._rows and not self._requests and not self._folding.locked()
        )

    def record(self, inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]) -> None:
        """One answered request: held by reference, binned later. Its rows are counted before
        it is held: one that fails here is not held (the monitor drops it, nothing else)."""
        output = outputs.get(self.output)
        if (self.text is not None or self.columns is not None) and output is not None:
            count = _rows_of(inputs)  # (an output may not be a row a row: a scalar)
            self._requests.append((inputs, output, outputs.get(self.label)))
            self._held += count
            if self._held >= FOLD_ROWS:
                self._fold_unless_folding()
            return
        rows = inputs.get(self.input)
        if rows is None or output is None:
            return
        if self.layout is not None:  # a few numbers an image now, not its pixels till a fold
            rows = image_features(rows, self.layout)
        elif not rows.ndim:  # a lone value (an input of shape []): one row
            rows = rows.reshape(1)
        self._rows.append((rows, output, outputs.get(self.label)))
        self._held += len(rows)
        if self._held >= FOLD_ROWS:
            self._fold_unless_folding()

    def _fold_unless_folding(self) -> None:
        """`FOLD_ROWS` are held: fold, unless a fold is under way (then the next request)."""
        if self._folding.acquire(blocking=False):
            try:
                self._fold()
            finally:
                self._folding.release()

    def fold(self) -> None:
        """Bin every held row into the counts."""
        with self._folding:
            self._fold()

    def _fold(self) -> None:
        """`fold`, `_folding` held. `_held` is reset, not decreased: a request adding to it
        meanwhile may count its rows twice (a fold a little early) or not at all (one later).
        The held requests are binned together; when that fails (one request the histograms
        cannot read), each alone, and only the ones that fail are dropped."""
        self._held = 0
        held, requested = _take(self._rows), _take(self._requests)
        if not held and not requested:
            return
        try:
            self._add(self._binned(held, requested))
        except Exception:
            for one in held:
                self._fold_one([one], [])
            for request in requested:
                self._fold_one([], [request])

    def _fold_one(self, held: list[Held], requested: list[Requested]) -> None:
        try:
            self._add(self._binned(held, requested))
        except Exception:
            not_counted(f"{self.manifest.name}:{self.manifest.version}")

    def _binned(self, held: list[Held], requested: list[Requested]) -> Binned:
        """The counts of `held` rows and `requested` requests (one of the two is empty), to be
        added at once: a request that fails adds nothing."""
        pending = [rows for rows, _, _ in held]
        requests = [inputs for inputs, _, _ in requested]
        outputs = [output for _, output, _ in held or requested]
        owns = [own for _, _, own in held or requested]
        categories: list[np.ndarray] = []
        if self.text is not None:
            ids, special = self.text.text.input, self.special
            assert special is not None  # set with `text`
            pending = [fed_features(self.text(inputs), ids, special) for inputs in requests]
        elif self.columns is not None:
            categories = self._count_categories(requests)
            if self.columns.specs and requests:  # one flat() for all: ~10 us a request less
                pending = [self.columns.flat(_stacked(requests, self.columns))]
            else:  # every column a string: no feature to bin, only the predictions
                pending = [np.empty((_rows_of(inputs), 0)) for inputs in requests]
        rows = np.concatenate(pending)
        if self._read_as is not None:
            rows = rows.astype(self._read_as, copy=False)
        rows = rows.astype(np.float64)
        rows = rows.reshape(len(rows), -1)
        predicted = None
        if self.predicted is not None and self.baseline.prediction is not None:
            output = np.concatenate(outputs)
            values = prediction_values(self.manifest, output, lambda: joined(owns, outputs))
            predicted = self.baseline.prediction.bin(values)
        return Binned(
            len(rows),
            self.baseline.bin_rows(rows),
            np.isnan(rows).sum(0),
            (rows < self.baseline.low).sum(0),
            (rows > self.baseline.high).sum(0),
            predicted,
            categories,
        )

    def _add(self, binned: Binned) -> None:
        """Adds `binned` to the counts, all or nothing: each sum is made before one is kept."""
        counts, nan = self.counts + binned.counts, self.nan + binned.nan
        below, above = self.below + binned.below, self.above + binned.above
        predicted = self.predicted
        if predicted is not None and binned.predicted is not None:
            predicted = predicted + binned.predicted
        categories = [
            mine + more for mine, more in zip(self.categories, binned.categories, strict=True)
        ]
        self.rows += binned.rows
        self.counts, self.nan, self.below, self.above = counts, nan, below, above
        self.predicted, self.categories = predicted, categories

    def _count_categories(self, requests: list[Mapping[str, np.ndarray]]) -> list[np.ndarray]:
        """The requests' string columns counted by category, each column in one pass."""
        counted = []
        for base, (name, column) in zip(self.baseline.categories, self._strings, strict=True):
            blocks = [_as_rows(inputs[name])[:, column] for inputs in requests]
            if blocks and name in self._stripped:
                blocks = [np.char.strip(block.astype(str)) for block in blocks]
            counted.append(base.bin(np.concatenate(blocks)) if blocks else 0 * base.counts)
        return counted

    def snapshot(self) -> dict[str, object] | None:
        """The counts so far as a JSON-able document (None when nothing was served); reset."""
        with self._folding:
            return self._snapshot()

    def _snapshot(self) -> dict[str, object] | None:
        self._fold()
        if not self.rows:
            return None
        doc: dict[str, object] = {
            "rows": self.rows,
            "counts": self.counts.tolist(),
            "nan": self.nan.tolist(),
            "below": self.below.tolist(),
            "above": self.above.tolist(),
            "prediction": None if self.predicted is None else self.predicted.tolist(),
        }
        if self.categories:
            doc["categories"] = [c.tolist() for c in self.categories]
        self.reset()
        return doc


def _take(held: list[T]) -> list[T]:
    """The items of `held` now, removed from it; one appended meanwhile stays (list slicing and
    slice deletion are each atomic; only one fold takes at a time)."""
    count = len(held)
    taken = held[:count]
    del held[:count]
    return taken


def _rows_of(inputs: Mapping[str, np.ndarray]) -> int:
    """The rows of a request: its first input's; a lone value (a text model's lone string,
    `{"inputs": "..."}` or an OIP tensor of shape []) is one row, as the model reads it."""
    first = next(iter(inputs.values()), None)
    if first is None:
        return 0
    return first.shape[0] if first.ndim else 1


def _as_rows(value: np.ndarray) -> np.ndarray:
    """`value` [N, ...] as rows [N, k]; a lone value [] as one row [1, 1]."""
    value = np.asarray(value)
    return value.reshape(value.shape[0] if value.ndim else 1, math.prod(value.shape[1:]))


def _stacked(
    requests: list[Mapping[str, np.ndarray]], columns: InputColumns
) -> dict[str, np.ndarray]:
    """The requests' values of each of `columns`' inputs, one above the other."""
    stacked = {}
    for spec in columns.specs:
        column = np.concatenate([_as_rows(inputs[spec.name]) for inputs in requests])
        typed = read_as(spec.dtype)  # as the model reads it (see LiveHistograms.__init__)
        stacked[spec.name] = column if typed is None else column.astype(typed, copy=False)
    return stacked


def read_as(dtype: str) -> np.dtype[np.generic] | None:
    """The numpy type a float input's values are binned in (the model's), else None."""
    return BY_NAME[dtype].numpy if dtype.startswith("float") else None


def string_cells(columns: InputColumns) -> dict[str, tuple[str, int]]:
    """Each string column's name -> (its input, its column within that input's rows)."""
    cells, start = {}, 0
    for spec, width in zip(columns.specs, columns.widths, strict=True):
        if spec.dtype == "string":
            cells.update({columns.names[start + i]: (spec.name, i) for i in range(width)})
        start += width
    return cells


def joined(owns: list[Labels], outputs: list[np.ndarray]) -> np.ndarray | None:
    """The label outputs of the requests of `outputs`, one after the other, row for row: None
    where none answered one; a request without one (an infer call asking for the scores
    alone) holds None in its rows, whose tie stays with the first best, as it was answered."""
    if all(own is None for own in owns):
        return None
    parts = []
    for own, output in zip(owns, outputs, strict=True):
        said = None if own is None else np.asarray(own).reshape(-1)
        if said is None or len(said) != len(output):  # not a label a row: settles nothing
            said = np.full(len(output), None, dtype=object)
        parts.append(said.astype(object))
    return np.concatenate(parts)


def prediction_values(
    manifest: ModelManifest, output: np.ndarray, own: Callable[[], Any] | None = None
) -> np.ndarray:
    """Per row: the predicted class index (classifiers: `output` holds the class scores) or
    the first value of `output` (the value output: watched.prediction_output). A row whose
    best scores tie exactly is the class the model's own label output (`own()`, row for row,
    asked for only when a row ties) names, as predict answers it (codecs/ties.py): counted as
    the first best, the empty texts a TF-IDF model answers [0.5, 0.5] and labels `pos` were
    counted `neg`, a class predict never answered, in served and training shares alike."""
    post = manifest.postprocessing
    if post is not None:
        raw = np.asarray(output)
        scores = raw.reshape(len(raw), -1)
        if scores.shape[1] == 1:  # one logit (sigmoid) or one probability: the positive class
            cut = 0.0 if post.activation == "sigmoid" else 0.5
            # As the pair predict ranks, [1 - p, p] (or [-x, x]): tied only at the cut itself.
            column = scores.astype(np.float64)
            scores = np.concatenate([2 * cut - column, column], axis=1)
        best = np.asarray(scores.argmax(1))
        # One pass a fold, no label read, unless a row's best scores tie (rare).
        if own is not None and len(scores) and _tied(scores):
            classes = scores.shape[1]
            named = manifest.labels if len(manifest.labels) == classes else None
            labels = named or tuple(str(i) for i in range(classes))
            for r, c in tie_winners(scores, labels, own()).items():
                best[r] = c
        return best
    raw = np.asarray(output, dtype=np.float64)
    return raw.reshape(len(raw), -1)[:, 0]


def _tied(scores: np.ndarray) -> bool:
    """Whether a row of `scores` [N, C] has two best scores. Row by row: a row holding a NaN
    (a model published with `--allow-nonfinite`) matches its NaN maximum nowhere, so a count
    over the whole fold let it cancel a tied row's extra match, and that row was counted as
    the first best, not as predict answered it."""
    best = scores == scores.max(axis=1, keepdims=True)
    return bool(np.any(np.count_nonzero(best, axis=1) > 1))
