"""Scoring decoded rows: per-row checks, the model in batches, classifier labels and scores.

Readers hand over raw per-input arrays; `coerce_rows` casts them to the model's element types
and sets aside each row that cannot be scored (with the reason) so the rest still is.
`ChunkScorer` runs the loaded model (the same `LoadedModel.predict` the predict API uses) in
batches of at most the model's batch limit and appends `label` and `score` for classifiers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from functions.runtime.batch.declared_shapes import declared_otherwise, row_shape_of
from functions.runtime.batch.field_names import (
    LABEL_FIELD,
    SCORE_FIELD,
    clashing,
    has_labels,
    renamed,
)
from functions.runtime.batch.nonfinite import nonfinite_reason, nonfinite_rows
from functions.runtime.batch.refusals import bisect, isolate
from functions.runtime.batch.row_axis import UnsupportedModel, row_per_row
from functions.runtime.batch.row_reasons import EXACT_FLOAT, bad_reason, quotes_cells
from functions.runtime.batch.sizes import by_size, is_ragged, stacked
from functions.runtime.codecs.class_names import class_names
from functions.runtime.codecs.ties import own_labels, tie_winners
from functions.runtime.dtypes import BY_NAME
from functions.runtime.exact_casts import inexact_rows
from functions.runtime.fixed_batch import (
    dynamic_batch_advice,
    one_row_batch,
    output_rows_elsewhere,
    output_rows_elsewhere_advice,
    rows_elsewhere,
    rows_elsewhere_advice,
)
from functions.runtime.manifest import ModelManifest, TensorSpec
from functions.runtime.model import LoadedModel
from functions.runtime.ort_errors import ModelRefused
from functions.runtime.text_input import batch_view, is_blank, text_input
from functions.runtime.window_axis import input_features_axis


@dataclass(frozen=True)
class OutputField:
    """One value written per row: a model output, or a classifier's label / score."""

    name: str
    dtype: str  # manifest spelling
    row_shape: tuple[int, ...]  # -1 where the model leaves a dimension dynamic


@dataclass(frozen=True)
class RowError:
    """A row that was not scored: its line (text) or row index (NPY) and why."""

    position: int
    reason: str


@dataclass
class Chunk:
    """Rows read from one piece of an input, decoded and checked, ready to score."""

    lines: int  # physical lines (text) or rows (NPY) this piece covers, blank lines included
    features: dict[str, np.ndarray]  # the good rows only, cast to the model's dtypes
    good: np.ndarray  # one bool per record read (blank lines are no records)
    # Text formats: each good row's line, echoed in the output (CSV: bytes as read; JSONL: str).
    records: list[str] | list[bytes]
    errors: list[RowError]
    positions: np.ndarray | None = None  # text formats: each good row's line
    size: int = 0  # what this piece read of its span: bytes (text, line breaks included) or rows
    header_only: bool = False  # a CSV's header alone (chunks of 1 row): the next holds its rows

    @property
    def rows(self) -> int:
        """How many rows are scored."""
        return int(self.good.sum())

    def drop(self, rows: list[int], reason: str | list[str]) -> None:
        """Moves good rows (indices among the scored rows) to the errors, for `reason` (one for
        all, or one per row)."""
        assert self.positions is not None
        keep = np.ones(self.rows, dtype=bool)
        keep[rows] = False
        reasons = [reason] * len(rows) if isinstance(reason, str) else reason
        dropped = (RowError(int(self.positions[i]), r) for i, r in zip(rows, reasons, strict=True))
        self.errors = sorted([*self.errors, *dropped], key=lambda e: e.position)
        self.features = {name: value[keep] for name, value in self.features.items()}
        if self.records:  # text formats echo each good row's line; NPY has none
            self.records = [r for r, k in zip(self.records, keep.tolist(), strict=True) if k]  # type: ignore[assignment]
        self.good = self.good.copy()
        self.good[np.flatnonzero(self.good)[~keep]] = False
        self.positions = self.positions[keep]


def row_shape(manifest: ModelManifest, spec: TensorSpec, sized: bool = True) -> tuple[int, ...]:
    """The per-row shape of `manifest`'s input `spec` (-1 where dynamic); batch scoring needs a
    dynamic batch axis (or one fixed at 1, which the model runs a row at a time), and its
    refusal says how to export one in the model's exporter's terms (torch advice told a
    scikit-learn user nothing). `sized`: the format gives no shape of its own (CSV columns),
    so the other dimensions must be fixed too; NPY and JSONL rows carry theirs (an image model
    of any height and width)."""
    dynamic = [str(axis) for axis, size in enumerate(spec.shape) if size == -1 and axis > 0]
    if spec.shape and spec.shape[0] in (-1, 1) and dynamic and sized:
        raise UnsupportedModel(
            f"input '{spec.name}' has shape {list(spec.shape)}: CSV columns give rows of one "
            f"fixed shape, and {_dynamic_advice(spec, dynamic, input_features_axis(manifest))}"
        )
    if not spec.shape or spec.shape[0] not in (-1, 1):
        raise UnsupportedModel(
            f"input '{spec.name}' has shape {list(spec.shape)}; batch scoring needs a dynamic "
            "first (batch) dimension (or one fixed at 1): export with a dynamic batch axis "
            f"({dynamic_batch_advice(manifest, spec.name)})"
        )
    return spec.shape[1:]


def _dynamic_advice(spec: TensorSpec, dynamic: list[str], window: int | None = None) -> str:
    """Which dimensions are dynamic and what to send instead, in the model's terms: a sequence's
    length (a GRU's token ids), a sensor window's steps (`window`: its features axis in the
    row, window_axis.py; it was told of "one image size a file") or an image's size."""
    if window is not None and len(spec.shape) == 3:
        steps = 2 - window  # the row's other side, as an axis of the input
        row = ["steps" if axis == steps else str(spec.shape[axis]) for axis in (1, 2)]
        return (
            f"dimension {steps} (the window's steps) is dynamic; send an .npy file of "
            f"[N, {', '.join(row)}] windows (one length a file) or JSONL (each line its own "
            "window, of any length)"
        )
    if spec.sequence:
        what = "ids" if spec.dtype.startswith(("int", "uint")) else "values"
        return (
            f"dimension 1 (the sequence length) is dynamic; send an .npy file of [N, L] {what} "
            f"(one sequence length a file) or JSONL (each line its own sequence of {what})"
        )
    return (
        f"dimensions {', '.join(dynamic)} are dynamic; send an .npy file (one image size a "
        "file) or JSONL (each line its own size)"
    )


def fits(want: tuple[int, ...], got: tuple[int, ...]) -> bool:
    """Whether a row of shape `got` fits an input's row shape `want` (-1: any size)."""
    return len(got) == len(want) and all(w in (-1, g) for w, g in zip(want, got, strict=True))


def coerce_rows(
    manifest: ModelManifest,
    raw: dict[str, np.ndarray],
    positions: np.ndarray,
    written: Callable[[int], dict[str, list[str]]] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray, list[RowError]]:
    """Cast raw rows to the input dtypes; (features of good rows, good mask, errors).
    `written(i)`: row i's cells as the file wrote them, by input (CSV), for reasons to quote."""
    good = np.ones(len(positions), dtype=bool)
    reasons: dict[int, str] = {}
    cast: dict[str, np.ndarray] = {}
    text = text_input(manifest)
    for spec in manifest.inputs:
        value, bad = _cast_rows(spec, raw[spec.name])
        columns = manifest.features if spec is manifest.feature_input else ()
        for index in np.flatnonzero(bad & good):
            row = raw[spec.name][index]  # its cells parsed again only where a reason quotes one
            quoted = written is not None and quotes_cells(row)
            cells = written(int(index))[spec.name] if quoted and written is not None else None
            reasons[int(index)] = bad_reason(spec, row, columns, cells)
        if text is not None and spec.name == text.field:  # a text model's text column
            blank = np.fromiter((is_blank(str(t)) for t in value), bool, len(value)) & good
            for index in np.flatnonzero(blank):
                reasons[int(index)] = f"'{spec.name}' is empty; there is no text to score"
            bad |= blank
        good &= ~bad
        cast[spec.name] = value
    errors = [RowError(int(positions[i]), reasons[i]) for i in sorted(reasons)]
    if good.all():
        return cast, good, errors
    return {name: value[good] for name, value in cast.items()}, good, errors


def _cast_rows(spec: TensorSpec, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The values cast to the input's dtype (bad rows zeroed) and a mask of the bad rows."""
    if is_ragged(value):  # rows of several sizes: each cast on its own
        each = [_cast_rows(spec, row[None]) for row in value]
        ragged = stacked([row[0] for row, _ in each])
        return ragged, np.fromiter((bad[0] for _, bad in each), bool, len(each))
    target = BY_NAME[spec.dtype].numpy
    none = np.zeros(len(value), dtype=bool)
    width = int(np.prod(value.shape[1:], dtype=np.int64))
    if spec.dtype == "string":
        return value.astype(object), none
    if target.kind == "f":
        with np.errstate(over="ignore", invalid="ignore"):
            cast = value.astype(target, copy=False)
        inexact = inexact_rows(value.reshape(len(value), width), target)  # as the API refuses
        if not spec.finite:
            return cast, inexact
        flat = cast.reshape(len(value), width)  # gaps: NaN is the graph's to fill, not inf
        refused = np.isinf(flat) if spec.gaps else ~np.isfinite(flat)
        return cast, np.asarray(refused.any(axis=1)) | inexact
    rows = value.reshape(len(value), width)
    if target.kind == "b":
        ok = np.asarray(((rows == 0) | (rows == 1)).all(axis=1))
    else:
        info = np.iinfo(target)  # type: ignore[type-var]
        with np.errstate(invalid="ignore"):
            # Past 2**53 a float holds only every other integer: such a cell may not be the one
            # the file wrote (9007199254740993 reads as ...992), so its row is refused.
            whole = (
                np.isfinite(rows) & (np.floor(rows) == rows) & (np.abs(rows) < EXACT_FLOAT)
                if rows.dtype.kind == "f"
                else True
            )
            # An exclusive float upper bound: float(2**64 - 1) is 2**64, which the cast wraps.
            top = rows < 2.0 ** (info.bits - (info.min < 0)) if rows.dtype.kind == "f" else True
            ok = np.asarray((whole & (rows >= info.min) & (rows <= info.max) & top).all(axis=1))
    safe = np.where(ok.reshape((-1,) + (1,) * (value.ndim - 1)), value, 0)
    return safe.astype(target), ~ok


def output_fields(manifest: ModelManifest) -> list[OutputField]:
    """What is written per row, in order: each model output, then label and score.

    A classifier's own label output (skl2onnx names it `label`) is not repeated beside `label`.
    """
    if not has_labels(manifest):
        return [OutputField(s.name, s.dtype, tuple(s.shape[1:])) for s in manifest.outputs]
    own_label = manifest.postprocessing.label_output if manifest.postprocessing else None
    names = clashing(manifest)  # an output named `label` or `score`: `<name>_output`
    found = [
        OutputField(names.get(s.name, s.name), s.dtype, tuple(s.shape[1:]))
        for s in manifest.outputs
        if s.name != own_label
    ]
    return [*found, OutputField(LABEL_FIELD, "string", ()), OutputField(SCORE_FIELD, "float64", ())]


def label_width(manifest: ModelManifest) -> int:
    """Characters of the longest label (the width of the `label` array in .npz outputs)."""
    # Labels that do not match the class count are replaced by class indices: allow for them.
    return max(max((len(label) for label in manifest.labels), default=1), 6)


class ChunkScorer:
    """Runs one loaded model over decoded chunks and names what each row gets written."""

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        # What the input files hold: for a text model, one text column (tokenized by the model).
        self.manifest = batch_view(model.manifest)
        self.batch = max(1, model.max_batch_size)
        # Whether the chunk the model is judged on, the input's first (a CSV's second where the
        # first holds its header alone), was scored before this one or is another span's
        # (`job.score_span`): a chunk refused whole is then bad rows, not a broken model. Only
        # that chunk judges, whatever its rows, so where shards and worker blocks cut the input
        # does not change the outcome.
        self.proven = False
        post = self.manifest.postprocessing
        self.scores_output = post.scores_output if post and has_labels(self.manifest) else None
        self.clashing = clashing(self.manifest)
        for spec in self.manifest.inputs:
            row_shape(self.manifest, spec, sized=False)
        for spec in self.manifest.inputs:
            axis = rows_elsewhere(self.manifest, spec)
            if axis is not None:
                raise UnsupportedModel(rows_elsewhere_advice(self.manifest, spec, axis))
        fixed = [s.name for s in self.manifest.inputs if s.shape[0] == 1]
        if fixed and not one_row_batch(self.manifest):
            raise UnsupportedModel(
                f"input '{fixed[0]}' has a batch of 1 fixed in the graph, but not every input "
                "and output does, so rows cannot be run one at a time: export with a dynamic "
                f"batch axis ({dynamic_batch_advice(self.manifest)})"
            )
        for spec in self.manifest.outputs:
            if not spec.shape:  # e.g. a sum over the whole batch: there is no value per row
                raise UnsupportedModel(
                    f"output '{spec.name}' has shape []: one value for the whole request, not "
                    "one per row, so batch scoring cannot write it beside each row"
                )
            axis = output_rows_elsewhere(self.manifest, spec)
            if axis is not None:  # a file of shape[0] rows was written each label's table
                raise UnsupportedModel(output_rows_elsewhere_advice(spec, axis))

    def fields(self) -> list[OutputField]:
        """What is written per row, in order: each model output, then label and score."""
        return output_fields(self.manifest)

    def screen(self, chunk: Chunk) -> None:
        """Moves the texts the model's tokenizer keeps nothing of (e.g. an accent alone, which
        BERT's normalizer strips) to the chunk's errors: scored, they would fail the chunk."""
        if chunk.positions is None:
            return
        unkept = self.unkept(chunk.features, chunk.rows)
        if unkept:
            chunk.drop(list(unkept), next(iter(unkept.values())))

    def unkept(self, features: dict[str, np.ndarray], rows: int) -> dict[int, str]:
        """Row -> why, for each text of `rows` rows the model's tokenizer keeps nothing of."""
        keeps = getattr(self.model.text.vocabulary, "keeps", None) if self.model.text else None
        if keeps is None or not rows:
            return {}
        field = self.manifest.inputs[0].name
        why = f"'{field}' holds nothing the tokenizer keeps; send some text"
        return {i: why for i, text in enumerate(features[field].tolist()) if not keeps(text)}

    def score_chunk(self, chunk: Chunk) -> dict[str, np.ndarray]:
        """Field name -> values for the chunk's good rows, once the rows the model cannot score
        (texts its tokenizer keeps nothing of, NaN or infinity in its answer) are moved to the
        chunk's errors: the predict API refuses those rows too."""
        self.screen(chunk)
        try:
            outputs = self.run_rows(chunk.features, chunk.rows)
        except ModelRefused as exc:  # some row's values (or all): find them, score the others
            outputs = isolate(self, chunk, exc.reason)
        self.proven = self.proven or not chunk.header_only
        bad = nonfinite_rows(outputs, chunk.rows) if outputs else None
        if bad is not None:
            rows = np.flatnonzero(bad).tolist()
            chunk.drop(rows, [nonfinite_reason(self.model.ref, outputs, i) for i in rows])
            outputs = {name: value[~bad] for name, value in outputs.items()} if chunk.rows else {}
        return self._labelled(outputs)

    def answered(
        self, features: dict[str, np.ndarray], rows: int
    ) -> tuple[dict[str, np.ndarray], dict[int, str]]:
        """(field name -> values for the rows of `rows` coerced rows the model answers; row ->
        the model's reason for each row it refuses, found as `score_chunk` finds them)."""
        unkept = self.unkept(features, rows)
        if unkept:  # scored, such a text fails the whole call
            left = np.ones(rows, dtype=bool)
            left[list(unkept)] = False
            outputs, others = self.answered({n: v[left] for n, v in features.items()}, left.sum())
            at = np.flatnonzero(left)
            return outputs, {**unkept, **{int(at[row]): why for row, why in others.items()}}
        refused: dict[int, str] = {}
        try:
            outputs = self.run_rows(features, rows)
        except ModelRefused as exc:
            outputs, refused = bisect(self, features, rows, exc.reason)
        self.proven = self.proven or len(refused) < rows
        return self._labelled(outputs), refused

    def run_rows(self, features: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
        """The model's outputs for `rows` coerced rows, in batches of its batch limit."""
        if rows == 0:
            return {}
        if any(is_ragged(value) for value in features.values()):
            return by_size(features, rows, self.run_rows)
        parts = []
        for i in range(0, rows, self.batch):
            sent = {n: v[i : i + self.batch] for n, v in features.items()}
            parts.append(row_per_row(self.model.predict(sent, typed=True), sent))
        return {name: _concat([p[name] for p in parts]) for name in self.model.output_names}

    def _labelled(self, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """`outputs` with a classifier's label and score added."""
        for spec in self.manifest.outputs:  # a CSV header of one width over rows of another
            declared = spec.shape[1:]
            got = row_shape_of(outputs[spec.name], declared) if spec.name in outputs else declared
            if -1 not in declared and not spec.map_keys and math.prod(declared) != math.prod(got):
                raise UnsupportedModel(declared_otherwise(spec, got))
        if self.scores_output and outputs:
            own = own_labels(self.manifest, outputs)
            label, score = label_and_score(self.manifest, outputs[self.scores_output], own)
            outputs = renamed(outputs, self.clashing)
            outputs[LABEL_FIELD], outputs[SCORE_FIELD] = label, score
        return outputs


def _concat(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def label_and_score(
    manifest: ModelManifest, raw: np.ndarray, own: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Best label and its probability per row, as the predict API's `predictions` give them:
    `own`, the model's own label output, settles a row whose best scores tie (ties.py)."""
    post = manifest.postprocessing
    rows = raw.reshape(raw.shape[0], -1).astype(np.float64)
    if post is not None and post.activation == "softmax":
        rows -= rows.max(axis=1, keepdims=True)
        np.exp(rows, out=rows)
        rows /= rows.sum(axis=1, keepdims=True)
    elif post is not None and post.activation == "sigmoid":
        rows = 1.0 / (1.0 + np.exp(-rows))
    if rows.shape[1] == 1:  # one score: the positive class of a binary classifier
        rows = np.concatenate([1.0 - rows, rows], axis=1)
    classes = rows.shape[1]
    names = class_names(manifest, classes)
    best = rows.argmax(axis=1)
    for r, c in tie_winners(rows, names, own, rows).items():
        best[r] = c
    return np.asarray(names, dtype=object)[best], rows[np.arange(len(rows)), best]
