"""Explanations of one model version: which inputs moved each prediction, and by how much.

Tabular rows are explained feature by feature (the columns of one input, or one input a column
as skl2onnx exports a DataFrame), images patch by patch (each patch a group that
is switched to the background together), both by Kernel SHAP against the version's background
(text models token by token, in `explain.text`, sharing the scoring and budget check here).
What is explained is what the predict route answers: class probabilities for a classifier (after
the manifest's activation), else the values of the first output. Each explained row's masked
rows go to onnxruntime in one batched call; the cost is estimated before anything runs and a
request over the time budget is refused with the numbers.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from functions.runtime.codecs.class_names import class_names
from functions.runtime.errors import InvalidInput
from functions.runtime.explain.answer_size import check_size
from functions.runtime.explain.background import Background
from functions.runtime.explain.categories import CategoryCodes
from functions.runtime.explain.kernel_shap import (
    Overrun,
    RowAttribution,
    default_samples,
    explain_rows,
    minimum_samples,
    numpy_seconds,
)
from functions.runtime.explain.patches import Grouping, declared_window, image_patches, read_as
from functions.runtime.explain.row_outputs import (
    MIN_TIMED_ROWS,
    LearnedRate,
    elsewhere,
    per_row,
    probe_rows,
)
from functions.runtime.explain.row_outputs import TimedModel as TimedModel
from functions.runtime.fixed_batch import one_row_batch
from functions.runtime.input_columns import InputColumns, as_type, input_columns
from functions.runtime.manifest import ModelManifest
from functions.runtime.model import QUIET_RUN, LoadedModel
from functions.runtime.onnx_session import cpu_count, intra_op_threads, session_options
from functions.runtime.validation import validate_inputs

MAX_SAMPLES = 100_000
MAX_ROWS = 64  # rows explained in one request
PROBE_SECONDS = 0.05  # the most a first estimate spends timing the model on repeated rows
PROBE_TIMINGS = 3  # timings of the repeated rows a first estimate takes the fastest of
# An explanation runs to this many times AIAAS_EXPLAIN_MAX_SECONDS, then is stopped: the limit
# refuses by an estimate, which a busy machine outran (12 rows estimated within 2 s took 20 s
# each, four at once, with nothing bounding them on `aiaas serve`); twice the default 10 s is
# still inside the predict function's 30 s timeout.
OVERRUN = 2
TIME_ADVICE = "send fewer rows or ask for fewer samples"


class OverBudget(InvalidInput):
    """The 422 of an explanation over AIAAS_EXPLAIN_MAX_SECONDS (by its estimate, or stopped
    past `OVERRUN` times it): `reason`, the numbers, then what a request can change.
    `aiaas explain --file` gives its own ways out instead (its rows are sent alone by then)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason + TIME_ADVICE)
        self.reason = reason  # ends with its separator (": ", "; ")

    def __reduce__(self) -> tuple[type[OverBudget], tuple[str]]:
        return type(self), (self.reason,)


@dataclass(frozen=True)
class Explanation:
    """Attributions of each row, with the names of what they are for."""

    method: str
    parameters: dict[str, Any]
    features: list[str]  # one name per group (a column, or an image patch); text: none
    outputs: list[str]  # class labels, or output element names
    rows: list[RowAttribution]
    tokens: list[list[str]] | None = None  # text: each row's tokens, its groups
    offsets: list[list[list[int]]] | None = None  # raw text: each token's [start, end) in it


def explained_columns(manifest: ModelManifest) -> InputColumns:
    """The columns explanations vary (one input, or one per column, numbers or strings); else
    a 422."""
    if "vocab_file" in manifest.preprocessing:
        raise InvalidInput(
            f"{manifest.name}:{manifest.version} is a text model: it is explained token by "
            "token against an all-padding row, with no background or feature rows"
        )
    return input_columns(manifest)


def grouping(manifest: ModelManifest, patch: int | None = None) -> Grouping:
    """How a row is cut into the groups attributions are given for: its columns, or for a
    model whose one input is an image, patches."""
    columns = explained_columns(manifest)
    row = columns.specs[0].shape[1:]
    if len(columns.specs) > 1 or len(row) <= 1:  # columns ([-1] alone: one)
        return Grouping(list(columns.names), [np.array([i]) for i in range(columns.width)], None)
    return image_patches(row, patch, window=declared_window(manifest))


class Explainer:
    """Kernel SHAP over one loaded model and its background."""

    def __init__(self, model: LoadedModel, background: Background, max_seconds: float) -> None:
        self.manifest = model.manifest
        columns = explained_columns(self.manifest)
        self.target = ModelTarget(model, columns, CategoryCodes(columns, background.categories))
        self.background = background
        self.max_seconds = max_seconds
        self._per_row = LearnedRate()

    def explain(
        self, inputs: Mapping[str, np.ndarray], samples: int | None, patch: int | None = None
    ) -> Explanation:
        codes = self.target.codes.copy()  # this request's new categories numbered after
        rows = codes.encode(self._rows(inputs))
        groups = grouping(self.manifest, patch)
        check_samples(samples, len(groups.columns), "feature" if groups.patch is None else "patch")
        coalitions = min(
            samples or default_samples(len(groups.columns)), 2 ** len(groups.columns) - 2
        )
        background = len(self.background.rows)
        width = self.target(as_type(probe_rows(self.background.rows), self.target.dtype)).shape[1]
        check_size(len(rows), len(groups.columns), width, coalitions)
        check_budget(
            len(rows) * coalitions * background,
            f"{len(rows)} row(s) x {coalitions:,} coalitions x {background} background rows",
            self._time_background(),
            self.max_seconds,
            len(rows) * self._numpy_seconds(coalitions, groups, rows.shape[1]),
        )
        timed = TimedModel(
            lambda masked: self.target.score(masked, codes), self.target.output_name(), width
        )
        with stopped_past(self.max_seconds, len(rows)) as deadline:
            explained = explain_rows(
                timed,
                rows.astype(_row_type(rows, self.target.dtype)),
                as_type(self.background.rows, self.target.dtype),
                self.background.weights,
                groups.columns,
                samples,
                deadline=deadline,
            )
        self._per_row.learn(timed.seconds, timed.rows)
        parameters: dict[str, Any] = {
            "samples": max((r.coalitions for r in explained), default=0),
            "exact": all(r.exact for r in explained),
            "background_rows": len(self.background.rows),
            "background": self.background.source,
            "seed": 0,
        }
        if groups.patch is not None:  # how the row was cut: patches.read_as
            parameters.update(patch=groups.patch, read_as=read_as(groups))
        if groups.shape is not None:  # a sequence's runs of steps of one feature
            parameters["patch_shape"] = list(groups.shape)
        outputs = self.target.outputs(self.background.rows[:1])
        return Explanation("kernel_shap", parameters, groups.names, outputs, explained)

    def _rows(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        feeds = validate_inputs(self.manifest, inputs, max_batch_size=MAX_ROWS, typed=False)
        return self.target.columns.flat(feeds, exact=True)

    def _numpy_seconds(self, coalitions: int, groups: Grouping, width: int) -> float:
        outputs = len(self.manifest.labels) or 1
        return numpy_seconds(
            coalitions, len(groups.columns), width, len(self.background.rows), outputs
        )

    def _time_background(self) -> float:
        """Seconds per model row: from the last explanation, else timed on the background (a
        small batch, so the estimate errs high)."""
        return self._per_row.get(lambda: self.target.seconds_per_row(self.background.rows))


@contextlib.contextmanager
def stopped_past(limit: float, rows: int, what: str = "row(s)") -> Iterator[float]:
    """The deadline (time.monotonic()) of an explanation of `rows` `what`: OVERRUN x `limit`
    from now; an Overrun inside is a 422 saying how far it got."""
    began = time.monotonic()
    try:
        yield began + OVERRUN * limit
    except Overrun as exc:
        raise OverBudget(
            f"this explanation was stopped after {time.monotonic() - began:.1f} s, {OVERRUN} "
            f"times the {limit:g} s limit (AIAAS_EXPLAIN_MAX_SECONDS) its estimate fitted in, "
            f"with {exc.done} of {rows} {what} explained: the model ran slower than estimated "
            "(a busy machine?); "
        ) from None


def _row_type(rows: np.ndarray, kind: Any) -> Any:
    """The type masked rows are built in: the inputs' own, or for a mixed model's float64 a
    wider float its rows hold (an int64 past 2^53, which float64 rounds: `exact_floats`)."""
    return rows.dtype if np.dtype(kind) == np.float64 and rows.dtype == np.longdouble else kind


def check_samples(samples: int | None, groups: int = 0, unit: str = "feature") -> None:
    """A 422 for `samples` out of range, or too few to pin the attributions of `groups`
    groups (`unit`: what one is, "feature", "patch", "token")."""
    if samples is not None and not 2 <= samples <= MAX_SAMPLES:
        raise InvalidInput(f"samples must be from 2 to {MAX_SAMPLES}; got {samples}")
    least = minimum_samples(groups)
    if samples is not None and samples < least:
        units = f"{unit}es" if unit.endswith("h") else f"{unit}s"
        raise InvalidInput(
            f"samples {samples} is too few for {groups} {units}: Kernel SHAP needs at least 2 "
            f"coalitions a {unit} ({least:,} here) to pin every {unit}'s attribution (a "
            "coalition and its complement count once; fewer have no unique fit); ask for "
            f"{least:,} or more, or leave samples out for the default "
            f"({default_samples(groups):,})"
        )


def check_budget(
    evaluations: int,
    breakdown: str,
    seconds_per_row: float,
    limit: float,
    numpy_seconds: float = 0.0,
) -> None:
    """A 422 with the numbers when `evaluations` model rows, plus `numpy_seconds` of work
    around the model (masked rows, the solve), would take longer than `limit` s."""
    model = evaluations * seconds_per_row
    if model + numpy_seconds > limit:
        around = (
            f", plus about {_seconds(numpy_seconds)} s building the masked rows and solving "
            f"(about {_seconds(model + numpy_seconds)} s in all)"
            if numpy_seconds >= 0.05
            else ""
        )
        raise OverBudget(
            f"this explanation needs about {evaluations:,} model evaluations ({breakdown}), "
            f"about {_seconds(model)} s at {seconds_per_row * 1e6:.1f} us each{around}; the limit is "
            f"{limit:g} s (AIAAS_EXPLAIN_MAX_SECONDS): "
        )


def _seconds(value: float) -> str:
    """14.2, 0.2, 0.044: under a tenth, two figures (`0.0 s` over a 0.01 s limit read as fitting)."""
    return f"{value:.1f}" if value >= 0.1 else f"{value:.2g}"


class ModelTarget:
    """What is explained, as a function of flat rows [N, F] -> [N, D] (float64): class
    probabilities for a classifier (after the manifest's activation), else the values of the
    first output; rows are cut into the model's inputs (`columns`, a string column's values
    numbered by `codes`) and scored in one call, on a session sized for thousands of rows at
    once."""

    def __init__(
        self, model: LoadedModel, columns: InputColumns, codes: CategoryCodes | None = None
    ) -> None:
        self.model = model
        self.manifest = model.manifest
        self.columns = columns
        self.codes = codes or CategoryCodes(columns)
        self.dtype = columns.dtype
        self._wide: Any = None

    def for_columns(self, columns: InputColumns) -> ModelTarget:
        """This target for rows cut as `columns` (an image of another size), on the same
        session: a new one for each size would cost a session load a request."""
        other = ModelTarget(self.model, columns)
        other._wide = self._session()
        return other

    def outputs(self, probe: np.ndarray) -> list[str]:
        """Names of the D values explained (`probe`: one row, to count them if unnamed)."""
        if self.manifest.postprocessing is not None and self.manifest.labels:
            return list(self.manifest.labels)
        return self.names(self(probe).shape[1])

    def names(self, count: int) -> list[str]:
        """The names of `count` explained values: a classifier's classes as predict names
        them (its labels, else "0", "1", ...), else `output_i`."""
        if self.manifest.postprocessing is not None:
            return list(class_names(self.manifest, count))
        return [f"{self.output_name()}_{i}" for i in range(count)]

    def seconds_per_row(self, rows: np.ndarray) -> float:
        """Wall time per row of scoring `rows` (after one untimed call that pays for set-up),
        again on `rows` repeated to MIN_TIMED_ROWS when that takes under PROBE_SECONDS: a
        10-row call is mostly call overhead (digits MLP: 9.7 us a row against 1.8 us in an
        explanation's thousands), and a first estimate that high refuses requests that fit."""
        self(rows)
        per_row = self._timed(rows)
        # Retimed too, within the probe's time: one preemption inside this short call made it
        # look 100x slow (digits MLP at load 13: 584 us a row against 5), and the repeated
        # rows' timings below were then skipped as too long.
        spent = per_row * len(rows)
        for _ in range(PROBE_TIMINGS - 1):
            if spent > PROBE_SECONDS:
                break
            again = self._timed(rows)
            spent += again * len(rows)
            per_row = min(per_row, again)
        repeats = -(-MIN_TIMED_ROWS // len(rows))
        once = per_row * repeats * len(rows)  # the repeated rows' call, at this rate
        if repeats > 1 and once <= PROBE_SECONDS:
            tiled = np.tile(rows, (repeats,) + (1,) * (rows.ndim - 1))
            # The fastest of as many timings as the probe's time allows (up to PROBE_TIMINGS):
            # one call of a millisecond takes a preemption on a busy machine whole, and a
            # first estimate 3x high refused requests that fit.
            timings = max(1, min(PROBE_TIMINGS, int(PROBE_SECONDS / max(once, 1e-9))))
            per_row = min(self._timed(tiled) for _ in range(timings))
        return per_row

    def _timed(self, rows: np.ndarray) -> float:
        began = time.perf_counter()
        self(rows)
        return (time.perf_counter() - began) / len(rows)

    def output_name(self) -> str:
        """The output explained: a classifier's scores, else the model's first float output
        (an unsupervised skl2onnx export's `scores` or `probabilities` beside its int64
        `label` first: a cluster id averaged over the background, "base 1.2", means
        nothing), else its first output."""
        post = self.manifest.postprocessing
        if post is not None:
            return post.scores_output
        outputs = self.manifest.outputs
        floats = [spec.name for spec in outputs if spec.dtype.startswith("float")]
        return floats[0] if floats else outputs[0].name

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        return self.score(rows, self.codes)

    def score(self, rows: np.ndarray, codes: CategoryCodes) -> np.ndarray:
        """The explained values of `rows`, their string columns numbered by `codes`."""
        return self.score_feeds(codes.feeds(rows), len(rows))

    def score_feeds(self, feeds: dict[str, np.ndarray], count: int) -> np.ndarray:
        """The explained values [count, D] of `count` rows given as the model's own feeds."""
        name = self.output_name()
        session = self._session()
        if session is self.model.session:
            raw = self.model.run(feeds, [name])[name]
        else:
            try:
                named = dict(zip([name], session.run([name], feeds, QUIET_RUN), strict=True))
            except Exception as exc:  # a category it refuses: the 422 predict answers
                raise self.model.failure(exc, feeds) from exc
            self.model.tabulate_maps(named)  # a ZipMap's rows of {class: p} as a table
            raw = named[name]
        # The activation in the output's own precision (float32: half the work of float64);
        # averages over the background are taken in float64 by the caller.
        value = per_row(raw, count, name, elsewhere(self.manifest, name))
        post = self.manifest.postprocessing
        if post is not None:  # labelled or not, as predict answers it (codecs/simple.py)
            value = probabilities(value, post.activation)
        return value.astype(np.float64, copy=False)

    def _session(self) -> Any:
        """The model's session, or for a small single-threaded one, a copy on every CPU: one
        explain scores thousands of rows at once, where a predict scores a few. A model held in
        memory has no file to open again: its own session scores."""
        if self._wide is None:
            threads = cpu_count()
            single = intra_op_threads(self.manifest.file.size) == 1
            self._wide = (
                ort.InferenceSession(
                    str(self.model.path),
                    sess_options=session_options(threads=threads),
                    providers=["CPUExecutionProvider"],
                )
                # a batch fixed at one runs its rows one call each, which the model's run does
                if single
                and threads > 1
                and not one_row_batch(self.manifest)
                and not self.model.in_memory
                else self.model.session
            )
        return self._wide


def probabilities(scores: np.ndarray, activation: str) -> np.ndarray:
    """Class probabilities [N, C] from a classifier's scores, as the predict route gives them."""
    if activation == "softmax":
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))
    positive = 1.0 / (1.0 + np.exp(-scores)) if activation == "sigmoid" else scores
    # one score: the positive class of a binary classifier
    return np.hstack([1.0 - positive, positive]) if positive.shape[1] == 1 else positive
