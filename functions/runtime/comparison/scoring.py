"""Both versions' answers to the same rows, compared as the shadow compares them, and timed.

Each batch is scored by A and by B (file rows in batches as batch scoring does; a captured
request whole, as predict did), then compared with `dataplane.compare.compare`, the function
the shadow uses, so a comparison here and the shadow's metrics mean the same thing. A batch
that cannot be compared as a whole (B answers NaN where A did not) is compared row by row, so
only its bad rows are set aside, each with the reason.

Latency: single calls (one row of a file, or one captured request as sent) to A and B in turn,
A first on even calls and B first on odd ones, so both see the same machine; up to a budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from functions.runtime.batch.scoring import (
    LABEL_FIELD,
    ChunkScorer,
    RowError,
    has_labels,
    label_and_score,
)
from functions.runtime.comparison.rows import Batch
from functions.runtime.dataplane.compare import Comparison, Incomparable, compare
from functions.runtime.errors import AiaasError
from functions.runtime.model import LoadedModel


@dataclass(frozen=True)
class Plan:
    """What is compared: outputs both versions have alike, and labels when both classify."""

    numeric: tuple[str, ...]
    labels: bool
    primary: str | None  # a numeric output with one value per row (regressor metrics, plots)


@dataclass
class Tally:
    """What the batches added up to (rows that were compared only)."""

    rows: int = 0
    agreed: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    labels: tuple[list[np.ndarray], list[np.ndarray]] = field(default_factory=lambda: ([], []))
    primary: tuple[list[np.ndarray], list[np.ndarray]] = field(default_factory=lambda: ([], []))
    truth: list[object] = field(default_factory=list)
    seconds: tuple[list[float], list[float]] = field(default_factory=lambda: ([], []))
    errors: list[RowError] = field(default_factory=list)


class PairScorer:
    """Scores batches with versions A and B and adds what they give up into a `Tally`."""

    def __init__(self, a: LoadedModel, b: LoadedModel, plan: Plan, file_rows: bool) -> None:
        self.models = (a, b)
        self.plan = plan
        # File rows are cast already and scored in batches; captured requests go as sent.
        self.scorers = (ChunkScorer(a), ChunkScorer(b)) if file_rows else None
        self.tally = Tally()
        self.before_call: Callable[[], None] = lambda: None  # a deadline's check, if any

    def add(self, batch: Batch, timed: int) -> None:
        """Score `batch` with both versions, compare, and time up to `timed` single calls."""
        try:
            answers = (self._answer(0, batch), self._answer(1, batch))
        except AiaasError as exc:
            if exc.status >= 500:
                raise
            self.tally.errors.append(RowError(batch.position, exc.message))
            return
        rows = len(next(iter(answers[0].values())))
        keep = self._compare(answers, rows, batch.position)
        self._keep(answers, keep, batch.truth)
        self._time(batch, min(timed, rows))

    def _answer(self, which: int, batch: Batch) -> dict[str, np.ndarray]:
        model = self.models[which]
        try:
            if self.scorers is not None and batch.rows is not None:
                return self.scorers[which].score(batch.inputs, batch.rows)
            outputs = model.predict(batch.inputs, typed=batch.typed)
        except AiaasError as exc:
            exc.message = f"version {model.manifest.version}: {exc.message}"
            raise
        post = model.manifest.postprocessing
        if self.plan.labels and post is not None and has_labels(model.manifest):
            outputs[LABEL_FIELD], _ = label_and_score(model.manifest, outputs[post.scores_output])
        return outputs

    def _compare(self, answers: tuple[dict[str, Any], ...], rows: int, position: int) -> np.ndarray:
        """Adds the comparison up; the rows that could be compared (all, unless B failed some)."""
        keep = np.ones(rows, dtype=bool)
        try:
            self._count(compare(*(self._doc(a, slice(None)) for a in answers)))
            return keep
        except Incomparable:
            pass
        for row in range(rows):
            try:
                self._count(compare(*(self._doc(a, slice(row, row + 1)) for a in answers)))
            except Incomparable as exc:
                keep[row] = False
                self.tally.errors.append(RowError(position + row, f"incomparable: {exc}"))
        return keep

    def _doc(self, answer: dict[str, np.ndarray], rows: slice) -> dict[str, Any]:
        doc: dict[str, Any] = {"outputs": {n: answer[n][rows] for n in self.plan.numeric}}
        if self.plan.labels:
            doc["predictions"] = [{"label": label} for label in answer[LABEL_FIELD][rows].tolist()]
        return doc

    def _count(self, found: Comparison) -> None:
        tally = self.tally
        tally.agreed += found.agreed or 0
        tally.max_abs, tally.max_rel = (
            max(tally.max_abs, found.max_abs),
            max(tally.max_rel, found.max_rel),
        )

    def _keep(
        self,
        answers: tuple[dict[str, np.ndarray], ...],
        keep: np.ndarray,
        truth: list[object] | None,
    ) -> None:
        tally = self.tally
        tally.rows += int(keep.sum())
        for which, answer in enumerate(answers):
            if self.plan.labels:
                tally.labels[which].append(answer[LABEL_FIELD][keep].astype(str))
            if self.plan.primary is not None:
                values = answer[self.plan.primary][keep].astype(np.float64).reshape(-1)
                tally.primary[which].append(values)
        rows = len(keep)
        given = truth if truth is not None else [None] * rows
        tally.truth.extend(value for value, ok in zip(given, keep.tolist(), strict=True) if ok)

    def _time(self, batch: Batch, calls: int) -> None:
        for call in range(calls):
            if batch.rows is None:  # a captured request: timed as it was sent
                inputs, typed = batch.inputs, batch.typed
            else:
                inputs, typed = {n: v[call : call + 1] for n, v in batch.inputs.items()}, True
            self.before_call()
            for which in (0, 1) if call % 2 == 0 else (1, 0):
                start = time.perf_counter()
                self.models[which].predict(inputs, typed=typed)
                self.tally.seconds[which].append(time.perf_counter() - start)
            if batch.rows is None:
                return
