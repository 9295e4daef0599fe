"""Both versions' answers to the same rows, compared as the shadow compares them, and timed.

Each batch is scored by A and by B (file rows in batches as batch scoring does; a captured
request whole, as predict did), then compared with `dataplane.compare.compare`, the function
the shadow uses, so a comparison here and the shadow's metrics mean the same thing (class
scores of versions whose classes differ compared on the classes both have, by name). A row a
version answers NaN or infinity for is refused by that version, as predict and batch refuse
it. A batch that cannot be compared as a whole is compared row by row, so only its bad rows
are set aside, each with the reason.

Latency: single calls (one row of a file, or one captured request as sent) to A and B in turn,
A first on even calls and B first on odd ones, so both see the same machine; up to a budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from functions.runtime.batch.field_names import LABEL_FIELD, clashing, has_labels, renamed
from functions.runtime.batch.nonfinite import nonfinite_reason, nonfinite_rows
from functions.runtime.batch.refusals import RefusesEveryRow
from functions.runtime.batch.row_axis import UnsupportedModel
from functions.runtime.batch.scoring import ChunkScorer, RowError, label_and_score
from functions.runtime.batch.sizes import picked
from functions.runtime.codecs.ties import own_labels
from functions.runtime.comparison.rows import Batch
from functions.runtime.dataplane.class_match import ClassMatch
from functions.runtime.dataplane.compare import Comparison, Incomparable, compare
from functions.runtime.errors import AiaasError, InvalidInput
from functions.runtime.model import LoadedModel
from functions.runtime.ort_errors import ModelRefused


@dataclass(frozen=True)
class Plan:
    """What is compared: outputs both versions have alike, and labels when both classify."""

    numeric: tuple[str, ...]
    labels: bool
    primary: str | None  # a numeric output with one value per row (regressor metrics, plots)
    # The class scores of versions whose class lists differ (another order, a class added):
    # compared as the shadow compares them, on the classes both have by name.
    scores: str | None = None
    width: int = 1  # the primary's values a row: several for a forecast's horizons (values.py)


@dataclass
class Tally:
    """What the batches added up to (rows that were compared only)."""

    rows: int = 0
    agreed: int = 0
    unshared: int = 0  # rows a version answered with a class only it has (matched by name)
    max_abs: float = 0.0
    max_rel: float = 0.0
    labels: tuple[list[np.ndarray], list[np.ndarray]] = field(default_factory=lambda: ([], []))
    primary: tuple[list[np.ndarray], list[np.ndarray]] = field(default_factory=lambda: ([], []))
    truth: list[object] = field(default_factory=list)
    seconds: tuple[list[float], list[float]] = field(default_factory=lambda: ([], []))
    errors: list[RowError] = field(default_factory=list)
    # Rows (captured requests) refused by A only, B only, both: not compared, listed in errors.
    refused: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("a", "b", "both"), 0))


@dataclass(frozen=True)
class Refused(RowError):
    """A row (or captured request) a version refused: `by` is "a", "b" or "both"."""

    by: str


def _finite(
    model: LoadedModel, outputs: dict[str, np.ndarray], refused: dict[int, str]
) -> tuple[dict[str, np.ndarray], dict[int, str]]:
    """`outputs` and `refused` with the rows answered NaN or infinity moved to `refused`, as
    the predict API and batch refuse them: compared, such a row of A counted as agreeing on an
    argmax of NaN and its differences as 0."""
    answered = [row for row in range(len(refused) + _rows(outputs)) if row not in refused]
    own = {name: outputs[name] for name in model.output_names if name in outputs}  # no score
    bad = nonfinite_rows(own, len(answered)) if answered else None
    if bad is None:
        return outputs, refused
    for position in np.flatnonzero(bad).tolist():
        refused[answered[position]] = nonfinite_reason(model.ref, own, position)
    return {name: value[~bad] for name, value in outputs.items()}, refused


def _rows(outputs: dict[str, np.ndarray]) -> int:
    return len(next(iter(outputs.values()))) if outputs else 0


def _rows_of(
    outputs: dict[str, np.ndarray], refused: dict[int, str], keep: np.ndarray
) -> dict[str, np.ndarray]:
    """`outputs` (of the rows a version answered, all but `refused`) of the rows in `keep`."""
    answered = np.ones(len(keep), dtype=bool)
    answered[list(refused)] = False
    return {name: value[keep[answered]] for name, value in outputs.items()}


class PairScorer:
    """Scores batches with versions A and B and adds what they give up into a `Tally`."""

    def __init__(self, a: LoadedModel, b: LoadedModel, plan: Plan, file_rows: bool) -> None:
        self.models = (a, b)
        self.plan = plan
        self.classes = ClassMatch.of(a.manifest, b.manifest)  # agreement: by name or index
        # File rows are cast already and scored in batches; captured requests go as sent.
        self.scorers = (ChunkScorer(a), ChunkScorer(b)) if file_rows else None
        self.tally = Tally()
        self.before_call: Callable[[], None] = lambda: None  # a deadline's check, if any
        self._timing: tuple[Batch, int] | None = None  # the batch timed last, its rows timed

    def add(self, batch: Batch, timed: int) -> None:
        """Score `batch` with both versions, compare the rows both answer, and time up to
        `timed` single calls."""
        try:
            found = (self._answer(0, batch), self._answer(1, batch))
        except (RefusesEveryRow, UnsupportedModel) as exc:  # a version broken for this file
            raise InvalidInput(exc.message) from None  # (any part of it): nothing to compare
        except AiaasError as exc:
            if exc.status >= 500:
                raise
            if batch.rows is not None and batch.rows > 1:  # find the rows, compare the others
                half = batch.rows // 2
                self.add(batch.select(slice(0, half)), min(timed, half))
                self.add(batch.select(slice(half, None)), max(0, timed - half))
                return
            self.tally.errors.append(RowError(batch.line(0), exc.message))
            return
        refused = self._refused(batch, found[0][1], found[1][1])
        answers = (found[0][0], found[1][0])
        if refused:
            if batch.rows is None:  # a captured request: compared whole, as predict answered it
                return
            keep = np.ones(batch.rows, dtype=bool)
            keep[refused] = False
            if not keep.any():
                return
            answers = (_rows_of(*found[0], keep), _rows_of(*found[1], keep))
            batch = batch.select(keep)
        rows = len(next(iter(answers[0].values())))
        keep = self._compare(answers, rows, batch)
        self._keep(answers, keep, batch.truth)
        self._time(batch, min(timed, rows))

    def _answer(self, which: int, batch: Batch) -> tuple[dict[str, np.ndarray], dict[int, str]]:
        """(version `which`'s outputs for the rows it answers; row -> why, for each row it
        refuses: file rows are found one by one, a captured request is refused whole)."""
        model = self.models[which]
        try:
            if self.scorers is not None and batch.rows is not None:
                return _finite(model, *self.scorers[which].answered(batch.inputs, batch.rows))
            outputs = model.predict(batch.inputs, typed=batch.typed)
        except ModelRefused as exc:
            return {}, {0: exc.reason}
        except AiaasError as exc:
            if not isinstance(exc, RefusesEveryRow):  # which names the version itself
                exc.message = f"version {model.manifest.version}: {exc.message}"
            raise
        if nonfinite_rows(outputs, _rows(outputs)) is not None:  # predict refuses the request whole
            return {}, {0: nonfinite_reason(model.ref, outputs, 0)}
        post = model.manifest.postprocessing
        if self.plan.labels and post is not None and has_labels(model.manifest):
            own = own_labels(model.manifest, outputs)
            label, _ = label_and_score(model.manifest, outputs[post.scores_output], own)
            outputs = renamed(outputs, clashing(model.manifest))  # named as file rows' are
            outputs[LABEL_FIELD] = label
        return outputs, {}

    def _refused(self, batch: Batch, by_a: dict[int, str], by_b: dict[int, str]) -> list[int]:
        """Records the rows either version refused, saying which; returns them."""
        a, b = (model.manifest.version for model in self.models)
        what = "row" if batch.rows is not None else "request"
        rows = sorted(by_a.keys() | by_b.keys())
        for row in rows:
            mine, theirs = by_a.get(row), by_b.get(row)
            if mine is not None and theirs is not None:
                by = "both"
                why = mine if mine == theirs else f"A: {mine}; B: {theirs}"
                reason = f"versions {a} (A) and {b} (B) both refused this {what}: {why}"
            elif mine is not None:
                by = "a"
                reason = f"version {a} (A) refused this {what} and {b} (B) answered it: {mine}"
            else:
                by = "b"
                reason = f"version {b} (B) refused this {what} and {a} (A) answered it: {theirs}"
            self.tally.refused[by] += 1
            self.tally.errors.append(Refused(batch.line(row), reason, by))
        return rows

    def _compare(self, answers: tuple[dict[str, Any], ...], rows: int, batch: Batch) -> np.ndarray:
        """Adds the comparison up; the rows that could be compared (all, unless B failed some)."""
        keep = np.ones(rows, dtype=bool)
        try:
            self._count(self._compared(answers, slice(None)))
            return keep
        except Incomparable:
            pass
        for row in range(rows):
            try:
                self._count(self._compared(answers, slice(row, row + 1)))
            except Incomparable as exc:
                keep[row] = False
                self.tally.errors.append(RowError(batch.line(row), f"incomparable: {exc}"))
        return keep

    def _compared(self, answers: tuple[dict[str, Any], ...], rows: slice) -> Comparison:
        a, b = answers
        scores = () if self.plan.scores is None else (self.plan.scores,)
        return compare(self._doc(a, rows), self._doc(b, rows), classes=self.classes, scores=scores)

    def _doc(self, answer: dict[str, np.ndarray], rows: slice) -> dict[str, Any]:
        doc: dict[str, Any] = {"outputs": {n: answer[n][rows] for n in self.plan.numeric}}
        if self.plan.labels:
            doc["predictions"] = [{"label": label} for label in answer[LABEL_FIELD][rows].tolist()]
        return doc

    def _count(self, found: Comparison) -> None:
        tally = self.tally
        tally.agreed += found.agreed or 0
        tally.unshared += found.unshared
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
                values = answer[self.plan.primary][keep].astype(np.float64)
                tally.primary[which].append(values.reshape(len(values), self.plan.width))
        rows = len(keep)
        given = truth if truth is not None else [None] * rows
        tally.truth.extend(value for value, ok in zip(given, keep.tolist(), strict=True) if ok)

    def time_more(self, calls: int) -> None:
        """Up to `calls` more single calls, on the rows of the batch timed last that were not:
        a budget's probe times a few of its batch first, to estimate (control plane)."""
        if self._timing is None:
            return
        batch, done = self._timing
        if batch.rows is not None:
            self._time(batch, min(calls, batch.rows - done), done)

    def _time(self, batch: Batch, calls: int, start: int = 0) -> None:
        self._timing = (batch, start + max(calls, 0))
        for call in range(start, start + calls):
            if batch.rows is None:  # a captured request: timed as it was sent
                inputs, typed = batch.inputs, batch.typed
            else:
                inputs, typed = picked(batch.inputs, np.arange(call, call + 1)), True
            self.before_call()
            for which in (0, 1) if call % 2 == 0 else (1, 0):
                began = time.perf_counter()
                self.models[which].predict(inputs, typed=typed)
                self.tally.seconds[which].append(time.perf_counter() - began)
            if batch.rows is None:
                return
