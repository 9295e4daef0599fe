"""Fit a version's drift baseline: bin its training rows and the model's own predictions."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from functions.runtime.batch.sizes import by_size
from functions.runtime.codecs.nulls import takes_missing
from functions.runtime.codecs.ties import own_labels
from functions.runtime.drift.baseline import (
    DEFAULT_BINS,
    DriftBaseline,
    PredictionBaseline,
    build,
    label_shares,
    value_bins,
)
from functions.runtime.drift.categories import category_baseline, free_text
from functions.runtime.drift.images import image_feature_names, image_features, image_layout
from functions.runtime.drift.live import prediction_values
from functions.runtime.drift.text import TEXT_FEATURES, UNKNOWN, fed_features, token_ids
from functions.runtime.drift.watched import prediction_output
from functions.runtime.dtypes import BY_NAME
from functions.runtime.errors import BadRequest
from functions.runtime.input_columns import as_type, by_column, indexed_names, input_columns
from functions.runtime.manifest import TensorSpec
from functions.runtime.model import LoadedModel
from functions.runtime.text_input import TEXT_KINDS

Feed = Callable[[np.ndarray], dict[str, np.ndarray]]


def fit(model: LoadedModel, rows: np.ndarray, bins: int = DEFAULT_BINS) -> DriftBaseline:
    """The baseline of training `rows` for `model`, predictions included: numeric rows [N, F]
    (one input's, or one input a column side by side), or a text model's token ids [N, L] or
    texts [N] (binned as length and unknown share, text.py)."""
    manifest = model.manifest
    if model.text is not None:
        return _texts(model, rows, bins)
    image = image_layout(manifest)
    if image is not None:
        return _images(model, rows, image[0], image_feature_names(image[1], image[0]), bins)
    if by_column(manifest):  # one input a column (a DataFrame's skl2onnx export, a text column)
        columns = input_columns(manifest)
        kind = object if columns.strings else np.float64
        rows = np.asarray(rows, dtype=kind).reshape(len(rows), -1)
        if rows.shape[1] != columns.width:
            raise BadRequest(
                f"rows of {rows.shape[1]} values for {model.ref}'s {columns.width} columns "
                f"({', '.join(columns.names)})"
            )
        # Numeric columns are binned on quantiles, string ones by category (categories.py).
        # Each `strings` and `numeric()` walks every input: taken once (a wide table's were
        # taken again for each of its columns).
        string_columns = set(columns.strings)
        numeric = [c for c in range(columns.width) if c not in string_columns]
        kept = columns.numeric()
        _check_missing(model, rows[:, numeric], kept.specs, kept.widths, kept.names)
        binned = _as_served(rows[:, numeric], lambda: kept.flat(columns.feeds(rows)))
        predictions, note = _predictions(model, rows, columns.feeds)
        base = build(binned, kept.names, predictions, bins)
        # Free text (most values distinct) is not compared by category (categories.py).
        free = {c for c in columns.strings if free_text(rows[:, c])}
        strings = [
            category_baseline(columns.names[c], rows[:, c])
            for c in columns.strings
            if c not in free
        ]
        texts = tuple(columns.names[c] for c in columns.strings if c in free)
        return dataclasses.replace(base, categories=tuple(strings), unwatched=note, free_text=texts)
    spec = manifest.inputs[0]
    if not spec.dtype.startswith(("float", "int", "uint")):
        raise BadRequest(
            f"{model.ref} reads {spec.dtype} {list(spec.shape)}: drift baselines are for "
            "numeric rows, or string and bool columns of a fixed row shape ([N] or [N, k])"
        )
    rows = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
    width = math.prod(spec.shape[1:])
    if rows.shape[1] != width and -1 not in spec.shape[1:]:
        # Else binned as that many features, and fed regrouped into rows of the input's width.
        raise BadRequest(
            f"rows of {rows.shape[1]} values for {model.ref}'s input '{spec.name}' "
            f"{list(spec.shape)}, which reads {width} a row"
        )
    # Unnamed columns as batch CSVs, capture exports and explanations name them (X_0 ... for
    # skl2onnx's `X`); baselines stored before said x_0 ... whatever the input's name, and are
    # still read (their names are shown as stored; only their width is checked, fits.py).
    names = manifest.features or indexed_names(spec.name, rows.shape[1])
    shape = (-1, *spec.shape[1:])

    def feed(chunk: np.ndarray) -> dict[str, np.ndarray]:
        return {spec.name: chunk.astype(spec.dtype).reshape(shape)}

    _check_missing(model, rows, (spec,))
    _check_range(model, rows, names, spec)
    served = _as_served(rows, lambda: as_type(rows, BY_NAME[spec.dtype].numpy))
    predictions, note = _predictions(model, rows, feed)
    return dataclasses.replace(build(served, tuple(names), predictions, bins), unwatched=note)


def _as_served(rows: np.ndarray, typed: Callable[[], np.ndarray]) -> np.ndarray:
    """Training rows binned as the live histograms bin served ones: the values the model reads
    (`typed`: float32 for an FP32 input). A CSV's float64 5.1 made an edge that float32 5.1
    falls below, so serving the training rows themselves showed as drift. Missing values (NaN,
    a model that takes them: `_check_missing`) stay NaN in a float cast; rows with infinity
    stay as they are, for `build` to refuse."""
    raw = np.asarray(rows, dtype=np.float64)
    served = raw.size > 0 and not np.isinf(raw).any()  # no numeric column: none to type
    return np.asarray(typed(), dtype=np.float64) if served else raw


def _check_missing(
    model: LoadedModel,
    rows: np.ndarray,
    specs: tuple[TensorSpec, ...],
    widths: tuple[int, ...] | None = None,
    names: tuple[str, ...] = (),
) -> None:
    """BadRequest for training rows with missing values (NaN) in a column whose input does not
    take them (one that must be finite, or of integers; `widths`: each input's columns, all
    of them when one): its served rows can have none, so its baseline counts none. A model
    that takes them has them counted (baseline.py). Judged per column: a DataFrame model
    published with --allow-nonfinite was refused for its float columns' gaps when it also had
    an int64 column, which holds none (hunt_ownmodels 3)."""
    flat = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
    gaps = np.isnan(flat).any(axis=0)
    if not gaps.any():
        return
    widths = widths or (flat.shape[1],)
    takes = np.concatenate(
        [np.full(width, takes_missing(spec)) for spec, width in zip(specs, widths, strict=True)]
    )
    refused = np.flatnonzero(gaps & ~takes)
    if not refused.size:
        return
    where = f" (column {names[refused[0]]!r})" if names else ""
    raise BadRequest(
        f"the training rows have missing values (NaN, an empty cell){where}; {model.ref} takes "
        "finite numbers only there, so its served rows have none to compare: fill or drop those "
        "rows (a model that handles missing values is published with `aiaas publish "
        "--allow-nonfinite`)"
    )


def _check_range(
    model: LoadedModel, rows: np.ndarray, names: tuple[str, ...], spec: TensorSpec
) -> None:
    """BadRequest naming the column of a finite training value the model's float input cannot
    hold (1e300 for float32: cast, it is infinity), which served the same is refused: it said
    only "input 'x' must be finite; found infinity at index [0, 3]", of a chunk of rows."""
    if not spec.dtype.startswith("float") or spec.dtype == "float64":
        return
    largest = float(np.finfo(spec.dtype).max)
    beyond = np.abs(np.nan_to_num(rows, nan=0.0, posinf=0.0, neginf=0.0)) > largest
    if beyond.any():
        row, column = (int(i[0]) for i in np.nonzero(beyond))
        raise BadRequest(
            f"column {names[column]!r} holds {rows[row, column]:.4g} (data row {row + 1}), "
            f"beyond the {largest:.4g} that {model.ref}'s {spec.dtype} input '{spec.name}' holds: "
            "give the values as the model was trained on them"
        )


def _images(
    model: LoadedModel, images: np.ndarray, layout: str, names: tuple[str, ...], bins: int
) -> DriftBaseline:
    """The baseline of images [N, ...] of one size, or a ragged array of several (an image of
    any size: its per-channel statistics and size, images.py), one size at a time."""
    spec = model.manifest.inputs[0]
    name = spec.name

    notes: list[str] = []

    def binned(feeds: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
        pixels = feeds[name]
        try:
            values = _predicted(model, pixels, lambda chunk: {name: chunk.astype(spec.dtype)})
        except Unrowed as exc:
            notes.append(str(exc))
            values = np.zeros(rows)
        return {"features": image_features(pixels, layout), "predicted": values}

    both = by_size({name: images}, len(images), binned)
    if not both:
        raise BadRequest("a drift baseline needs at least 2 rows of training data")
    _check_missing(model, both["features"], (spec,))  # an image with NaN pixels
    if notes:
        return dataclasses.replace(build(both["features"], names, None, bins), unwatched=notes[0])
    return build(both["features"], names, _binned(model, both["predicted"]), bins)


def _texts(model: LoadedModel, rows: np.ndarray, bins: int) -> DriftBaseline:
    """Training's token ids [N, L], or texts [N] tokenized as serving tokenizes them (`aiaas
    baseline`), as length and unknown share by the model's own ids; predictions alongside."""
    text = model.text
    assert text is not None
    name, special = text.text.input, token_ids(text)
    rows = np.asarray(rows)
    if rows.dtype.kind not in TEXT_KINDS:
        rows = rows.astype(np.int64).reshape(len(rows), -1)
    features, predicted, note = [], [], ""
    output = prediction_output(model.manifest)
    for chunk in np.array_split(rows, max(1, -(-len(rows) // model.max_batch_size))):
        feeds = text({name: chunk})  # ids are passed on as they are
        features.append(fed_features(feeds, name, special))
        answered = model.predict(feeds)
        raw = answered[output]
        note = note or not_per_row(output, raw, len(chunk))
        if not note:
            predicted.append(prediction_values(model.manifest, raw, _own(model, answered, raw)))
    binned = None if note else _binned(model, np.concatenate(predicted))
    base = build(np.concatenate(features), TEXT_FEATURES, binned, bins)
    constant = (UNKNOWN,) if special.unknown is None else ()
    return dataclasses.replace(base, constant=constant, unwatched=note)


class Unrowed(Exception):
    """The watched output is not one row per row sent (its message says how)."""


def not_per_row(name: str, raw: np.ndarray, rows: int) -> str:
    """Why output `name`, answering `raw` for `rows` rows, has no prediction to bin per row
    ("" when it has one a row). A scalar failed with a TypeError and stored nothing; a sum over
    the request [1, F] was binned as one prediction for a whole file, and served requests of 20
    rows then showed as drift (PSI 18)."""
    shape = np.shape(raw)
    if len(shape) and shape[0] == rows:
        return ""
    what = (
        "one value for the whole request"
        if not shape
        else "not a row for each row (a result over the whole request, or a detector's boxes)"
    )
    return (
        f"no prediction histogram: output '{name}' answers {list(shape)} for {rows} row(s) "
        f"sent, {what}, so there is no prediction a row to bin; drift watches the inputs only"
    )


def _predictions(
    model: LoadedModel, rows: np.ndarray, feed: Feed
) -> tuple[PredictionBaseline | None, str]:
    """The predictions' baseline, or None and why not (`not_per_row`)."""
    try:
        return _binned(model, _predicted(model, rows, feed)), ""
    except Unrowed as exc:
        return None, str(exc)


def _predicted(model: LoadedModel, rows: np.ndarray, feed: Feed) -> np.ndarray:
    """The prediction binned (`prediction_values`) of each of `rows`, in batches; Unrowed
    for an output that is not one row per row."""
    manifest = model.manifest
    output = prediction_output(manifest)
    values = []
    for chunk in np.array_split(rows, max(1, -(-len(rows) // model.max_batch_size))):
        answered = model.predict(feed(chunk))
        raw = answered[output]
        note = not_per_row(output, raw, len(chunk))
        if note:
            raise Unrowed(note)
        values.append(prediction_values(manifest, raw, _own(model, answered, raw)))
    return np.concatenate(values)


def _own(
    model: LoadedModel, answered: Mapping[str, np.ndarray], raw: np.ndarray
) -> Callable[[], Any]:
    """The model's own label output of `answered`, which settles exactly tied best scores
    (codecs/ties.py) in the training shares as predict and the live shares settle them; None
    for one that is not a label a row of `raw`'s."""
    own = own_labels(model.manifest, answered)
    return lambda: own if own is not None and np.size(own) == len(raw) else None


def _binned(model: LoadedModel, values: np.ndarray) -> PredictionBaseline:
    """The bins of `values`, the predictions of `prediction_output`, which they name: serving
    bins that output for them, not the first (a baseline written before named none)."""
    manifest = model.manifest
    output = prediction_output(manifest)
    if manifest.postprocessing is None:
        return dataclasses.replace(value_bins(values), output=output)
    classes = int(values.max()) + 1 if len(values) else 0
    labels = manifest.labels or tuple(str(i) for i in range(max(classes, 2)))
    return dataclasses.replace(label_shares(values, tuple(labels)), output=output)
