"""What an explanation needs of the explained output: a row of values for each row sent, of
the same size whatever rows are sent together, as batch scoring needs (batch/row_axis.py).

A model that answers for the whole request (a sum over its rows [1, F], a scalar) or finds
things among them (a detector's boxes [K, 4]) has no answer of a row's own to attribute to
that row's features; one whose row size depends on the rows sent together ([N, K, 6], K the
most boxes found in a call) answers the masked rows in sizes that cannot be compared. Both
failed deep in numpy ("cannot reshape array of size 8 into shape (5,newaxis)", "operands could
not be broadcast"): a traceback from `aiaas explain`, a 500 from POST /models/{name}/explain.
Each is a 422 naming the output, found on the first run that shows it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from functions.runtime.errors import InvalidInput
from functions.runtime.fixed_batch import output_rows_elsewhere
from functions.runtime.manifest import ModelManifest

MIN_TIMED_ROWS = 1000  # model rows an explanation scores before its time per row is kept
RECENT_RATES = 8  # explanations' rates an estimate takes the fastest of

WHY = (
    "an explanation attributes each row's own answer to that row's features, so it needs an "
    "output that answers one row of values for each row sent"
)


class NotPerRow(InvalidInput):
    """The explained output does not answer a row of a fixed size for each row sent."""


def elsewhere(manifest: ModelManifest, name: str) -> bool:
    """Whether output `name` has its rows on a later axis ([labels, N, 2]: fixed_batch.py)."""
    spec = next((o for o in manifest.outputs if o.name == name), None)
    return spec is not None and output_rows_elsewhere(manifest, spec) is not None


def per_row(raw: object, count: int, name: str, rows_elsewhere: bool = False) -> np.ndarray:
    """`raw`, the explained output `name` for `count` rows, as [count, D]; else NotPerRow.
    `rows_elsewhere`: the output's rows are on a later axis, so even an answer whose first
    axis is `count` long (3 masked rows of a 3-label [3, N, 2]) is no row a row."""
    value = np.asarray(raw)
    if value.ndim == 0 or value.shape[0] != count or rows_elsewhere:
        whole = (
            "one value for the whole request"
            if value.ndim == 0
            else "its rows on a later axis than the first (skl2onnx's multi-label "
            "probabilities, [labels, N, 2])"
            if rows_elsewhere
            else "not a row for each row (a result over the whole request, or a detector's "
            "boxes, found among the rows)"
        )
        raise NotPerRow(
            f"output '{name}' answers {list(value.shape)} for {count} row(s) sent: {whole}; "
            f"{WHY} (batch scoring refuses such a model too)"
        )
    return value.reshape(count, -1)


class TimedModel:
    """A model that keeps count of the rows it scored and the seconds that took, so the next
    estimate's model part is the model's alone; and that checks each answer has `width` values
    a row (the first answer's when not given): NotPerRow otherwise."""

    def __init__(
        self, model: Callable[[np.ndarray], np.ndarray], name: str = "", width: int | None = None
    ) -> None:
        self.model = model
        self.name = name
        self.width = width
        self.seconds = 0.0
        self.rows = 0

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        began = time.perf_counter()
        value = self.model(rows)
        self.seconds += time.perf_counter() - began
        self.rows += len(rows)
        if self.width is None:
            self.width = value.shape[1]
        elif value.shape[1] != self.width:
            raise NotPerRow(
                f"output '{self.name}' answers {value.shape[1]} values a row for {len(rows)} "
                f"row(s) sent together and {self.width} for others: the size of its rows "
                "depends on the rows sent with them (a detector's boxes [N, K, ...], K the most "
                f"found in a call), so the masked rows' answers cannot be compared; {WHY}, of "
                "one size"
            )
        return value


def probe_rows(background: np.ndarray) -> np.ndarray:
    """Two rows to probe the explained output with (the background's first two, or its one
    row twice): one row cannot tell [1, F] for the whole request from a row for each."""
    return background[:2] if len(background) >= 2 else np.concatenate([background[:1]] * 2)


class LearnedRate:
    """Model seconds per unit of work (a row, a pixel value, a token position), learned from
    the explanations served, for the next request's estimate; the first estimate is probed.

    One rule for every explainer: an explanation that scored fewer than MIN_TIMED_ROWS rows
    teaches nothing. Its time is mostly call overhead: a one-token text scores 2 rows, and
    dividing its 2 ms by them made the next 20-token text "need 20 s" that takes 0.5 s. The
    estimate is the fastest of the last RECENT_RATES rates: each is wall time, and one taken
    while other requests shared the cores (4 concurrent explains: 5.5x the model's rate) made
    the request that had just taken 1.8 s alone a 422 on every retry, since a refused request
    times nothing. A model truly slower now is learned once every recent rate shows it."""

    def __init__(self) -> None:
        # A tuple replaced whole: concurrent requests read it while one adds to it.
        self._recent: tuple[float, ...] = ()
        self._probed: float | None = None

    def get(self, probe: Callable[[], float]) -> float:
        """The learned rate, else `probe()`'s (timed once, until an explanation is learned)."""
        recent = self._recent
        if recent:
            return min(recent)
        if self._probed is None:
            self._probed = probe()
        return self._probed

    def learn(self, seconds: float, rows: int, per_row: float = 1.0) -> None:
        """Keep the rate of `rows` model rows of `per_row` units each scored in `seconds`,
        when there were enough rows to time."""
        if rows >= MIN_TIMED_ROWS:
            self._recent = (*self._recent, seconds / (rows * per_row))[-RECENT_RATES:]
