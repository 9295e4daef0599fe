"""Input validation against a manifest: names, element types, shapes, batch size, finiteness.

Every failure is an `InvalidInput` (422) whose message names the input and what was expected.
Typed tensors (Open Inference Protocol, binary) must match or cast safely; untyped JSON
numbers may also go from integers to floats, since JSON does not tell `1` from `1.0`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from functions.runtime.column_names import collision
from functions.runtime.dtypes import BY_NAME
from functions.runtime.errors import InvalidInput
from functions.runtime.exact_casts import beyond_float_range, exact_in_float
from functions.runtime.finite import all_finite
from functions.runtime.fixed_batch import dynamic_batch_advice, elsewhere_advice, one_row_batch
from functions.runtime.input_messages import (
    channels_hint,
    fixed_batch_hint,
    grey_axis_missing,
    missing_value,
    number_word,
    scaled_pixels_hint,
)
from functions.runtime.input_messages import describe as describe  # read from here too
from functions.runtime.manifest import ModelManifest, TensorSpec
from functions.runtime.ort_errors import ModelRefused
from functions.runtime.sent_values import (
    ambiguous_null,
    encoded_image_hint,
    sent_value,
    string_null,
)

# A JSON number past float32's range overflows to infinity in `validate_inputs`' cast, and the
# finiteness check after it answers the 400 that names the value. numpy's RuntimeWarning for it
# ("overflow encountered in cast") said nothing more, as two lines of text on stderr that any
# caller could write. Filtered here rather than cast under np.errstate (~2.5 us a request).
warnings.filterwarnings("ignore", "overflow encountered in cast", RuntimeWarning, __name__)


def type_name(dtype: str, typed: bool) -> str:
    """An element type as the caller knows it: a typed tensor's (OIP, binary) sender reads its
    OIP datatype (`FP16 (float16)`, where `float16` alone named numpy's), the simple JSON form's
    numpy's (its docs name them so)."""
    entry = BY_NAME.get(dtype)
    return f"{entry.oip} ({dtype})" if typed and entry is not None else dtype


def _cast(spec: TensorSpec, value: np.ndarray, *, typed: bool, named: bool) -> np.ndarray:
    target = BY_NAME[spec.dtype].numpy
    want = type_name(spec.dtype, named)
    source = value.dtype
    if spec.dtype == "string":
        # An object array may hold anything; onnxruntime would quietly turn None into "None".
        if source.kind in "US" or (
            source.kind == "O" and all(isinstance(v, str | bytes) for v in value.flat)
        ):
            return _stripped(spec, value.astype(object, copy=False))
        filled = fill_missing(spec, value)
        if filled is not None:
            return _stripped(spec, filled)
        if source.kind == "b" or any(isinstance(v, bool) for v in value.flat):
            raise InvalidInput(  # a yes/no column trained as categories: its text decides
                f"input '{spec.name}' expects string; got true/false values: send the text the "
                'training data held ("True" / "False" from Parquet or pandas); the model '
                "card lists each column's categories"
            )
    elif source == target:
        return value
    elif not typed and target.kind == "f" and source.kind in "iuf":
        # JSON numbers decode as int64/float64; a float model takes them (the usual JSON
        # request, asked first: np.can_cast costs as much as the cast of a row).
        return value.astype(target)
    elif source.kind == "b" and target.kind != "b":
        raise InvalidInput(f"input '{spec.name}' expects {want}; got true/false values")
    elif np.can_cast(source, target, casting="safe"):
        if source.kind in "iu" and target.kind == "f":
            exact_in_float(spec, value, target)
        return value.astype(target)
    elif not typed and source.kind in "iuf" and target.kind in "iu":
        # JSON integers decode as int64 and fit a narrower int only if every value does; a
        # client that writes 6 as 6.0 (most JSON encoders of a float column) means 6.
        return _whole_numbers(spec, value, target, want)
    null = string_null(spec, value)
    if null is not None:
        raise InvalidInput(null)
    encoded = encoded_image_hint(spec, value)
    if encoded:
        raise InvalidInput(f"input '{spec.name}' expects {want}; got text: {encoded}")
    if source.kind in "USO" and spec.dtype != "string":
        _not_a_number(spec, value, want)
    if (spec.dtype == "string" and source.kind == "O") or value.size == 0:  # what was sent
        raise InvalidInput(f"input '{spec.name}' expects {want}; got {sent_value(value)}")
    got = "text or null values" if source.kind in "USO" else type_name(str(source), named)
    fix = ": send true or false" if target.kind == "b" and not typed else ""  # JSON's 1/0
    if source.kind in "iuf" and target.kind in "iuf":  # a typed tensor's type: say the one
        fix = f": send {BY_NAME[spec.dtype].oip} (numpy .astype('{spec.dtype}'))"
        fix = _changed_by_cast(spec, value, target) or beyond_float_range(value, target) or fix
    raise InvalidInput(
        f"input '{spec.name}' expects {want}; got {got}, which does not convert safely{fix}"
    )


def _changed_by_cast(spec: TensorSpec, value: np.ndarray, target: np.dtype) -> str:
    """Why .astype to an integer `target` would change the values sent (`: 1.5 is not a whole
    number`, `: values are outside [0, 255]`), else "": a typed FP64 1.5 for an INT64 input, or
    INT64 300 for a UINT8 image, was told to send .astype('int64') (1), .astype('uint8') (44)."""
    if target.kind not in "iu":
        return ""
    try:
        _whole_numbers(spec, value, target)
    except InvalidInput as exc:
        return ": " + exc.public_message.split("; ", 1)[1]
    return ""


def _stripped(spec: TensorSpec, value: np.ndarray) -> np.ndarray:
    """A string input's values less the blanks around each, where its model was trained so
    (`TensorSpec.strip`): " Nice" from a CSV written `30, Nice` is the category "Nice"."""
    if not spec.strip:
        return value
    flat = [v.strip() for v in value.reshape(-1).tolist()]
    return np.array(flat, dtype=object).reshape(value.shape)


def _not_a_number(spec: TensorSpec, value: np.ndarray, want: str) -> None:
    """Raise naming the first value of a numeric input that is no number (a "3.5" in a
    record), as a record by feature name is told; a null where none is taken: `missing_value`."""
    for index, item in enumerate(value.reshape(-1).tolist()):
        at = [int(i) for i in np.unravel_index(index, value.shape)]
        where = f"input '{spec.name}'" + (f" value {at}" if at else "")
        if item is None and spec.finite and not spec.gaps:
            raise InvalidInput(missing_value(where, "null"))
        if isinstance(item, bool) or not isinstance(item, int | float | None):
            kind = f", {want}" if want != spec.dtype else f" ({want})"  # typed: FP32 (float32)
            raise InvalidInput(f"{where} must be {number_word(spec.dtype)}{kind}; got {item!r:.40}")


def fill_missing(spec: TensorSpec, value: np.ndarray) -> np.ndarray | None:
    """A string input's texts and nulls with each null its missing category (`spec.missing`,
    scikit-learn's "nan"), as an object array; None when it has none or `value` holds more;
    InvalidInput where a null is ambiguous (`ambiguous_null`)."""
    if spec.missing is None or value.dtype != object:
        return None
    flat = value.reshape(-1).tolist()
    if not all(v is None or isinstance(v, str | bytes) for v in flat):
        return None
    if None in flat and (ambiguous := ambiguous_null(spec)) is not None:
        raise InvalidInput(ambiguous)
    filled = [spec.missing if v is None else v for v in flat]
    return np.array(filled, dtype=object).reshape(value.shape)


def _whole_numbers(
    spec: TensorSpec, value: np.ndarray, target: np.dtype, want: str | None = None
) -> np.ndarray:
    info = np.iinfo(target)
    if value.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(value) & (np.floor(value) == value)
        if not whole.all():
            bad = float(value[~whole].flat[0])
            raise InvalidInput(
                f"input '{spec.name}' expects {want or spec.dtype}; {bad!r} is not a whole number"
                + scaled_pixels_hint(target, value)
            )
        # Bounds as floats, the upper one exclusive: float(2**64 - 1) rounds up to 2**64, which
        # `<= info.max` would let through and the cast would wrap to 0.
        upper = 2.0 ** (info.bits if info.min == 0 else info.bits - 1)
        if value.size == 0 or (value.min() >= info.min and value.max() < upper):
            return value.astype(target)
        outside = (value < info.min) | (value >= upper)
    elif value.size == 0 or (value.min() >= info.min and value.max() <= info.max):
        return value.astype(target)
    else:
        outside = (value < info.min) | (value > info.max)
    # The first value out of range and its place (the range alone left 1 of 30 values to find)
    at = np.argwhere(outside)[0]
    first = value[tuple(at)]
    shown = f"{float(first):g}" if value.dtype.kind == "f" else str(int(first))
    raise InvalidInput(
        f"input '{spec.name}' expects {want or spec.dtype}; values are outside "
        f"[{info.min}, {info.max}] ({shown} at index {at.tolist()})"
    )


# Said beside the shape of an input whose graph fixes its batch at 1, which is run a row at a time.
ANY_ROWS = "; any number of rows: the graph's batch of 1 runs a row at a time"


def _check_shape(
    spec: TensorSpec,
    value: np.ndarray,
    *,
    any_rows: bool = False,
    elsewhere: str = "",
    shared: bool = False,
    advice: str = "",
) -> None:
    """Raise naming the first dimension that does not fit. `any_rows`: the model takes any
    number of rows although its graph fixes the batch at one (run a row at a time), so the
    first dimension is not what is wrong: the message shows the shape as the model's metadata
    does ([1, 3], where it showed [-1, 3]) and says any number of rows is taken. `elsewhere`: the
    input's rows are not on its first axis (`elsewhere_advice`), said for a wrong one.
    `shared`: the model's inputs all fix one first dimension, a batch even of a 1-D input.
    `advice`: how to export the model with a dynamic batch axis (`dynamic_batch_advice`)."""
    want = (-1, *spec.shape[1:]) if any_rows and spec.shape else spec.shape
    rows = ANY_ROWS if want[:1] != spec.shape[:1] else ""
    if value.ndim != len(want):
        raise InvalidInput(
            f"input '{spec.name}' expects shape {list(spec.shape)} (rank {spec.rank}{rows}); "
            f"got shape {list(value.shape)}{grey_axis_missing(spec.shape, value.shape)}"
        )
    for axis, size in enumerate(want):
        if size != -1 and size != value.shape[axis]:
            raise InvalidInput(
                f"input '{spec.name}' expects shape {list(spec.shape)}"
                + (f" ({rows.removeprefix('; ')})" if rows else "")
                + f"; got {list(value.shape)} "
                f"(dimension {axis} must be {size}){channels_hint(want, value.shape)}"
                + (
                    f"; {elsewhere}"
                    if elsewhere and axis == 0
                    else fixed_batch_hint(spec, axis, shared, advice)
                )
            )


def _check_finite(spec: TensorSpec, value: np.ndarray, sent: np.ndarray | None = None) -> None:
    """Raise for the first non-finite value: missing (NaN, unless the input takes gaps),
    infinite, or a finite number that `sent` held but the cast to a narrower float made
    infinite (1e39 in float32)."""
    refused = np.isinf(value) if spec.gaps else ~np.isfinite(value)
    if not (spec.finite and value.dtype.kind == "f") or not refused.any():
        return
    bad = np.argwhere(refused)[0]
    index, item = bad.tolist(), value[tuple(bad)]
    if np.isnan(item):
        raise InvalidInput(missing_value(f"input '{spec.name}' at index {index}", "null or NaN"))
    original = sent[tuple(bad)] if sent is not None and sent.shape == value.shape else item
    if sent is not None and sent.dtype.kind in "iuf" and np.isfinite(original):
        limit = float(np.finfo(value.dtype).max)
        raise InvalidInput(
            f"input '{spec.name}' has {float(original):g} at index {index}, out of "
            f"{spec.dtype}'s range (±{limit:.2g})"
        )
    sign = "-" if item < 0 else ""
    raise InvalidInput(f"input '{spec.name}' must be finite; found {sign}infinity at index {index}")


@dataclass(frozen=True)
class InputRule:
    """One input's checks, precomputed from its spec: the hot path reads no manifest."""

    spec: TensorSpec
    dtype: np.dtype[np.generic]
    static_dims: tuple[tuple[int, int], ...]  # (axis, size) of every non-dynamic dimension
    batched: bool  # first dimension dynamic: the batch axis
    finite: bool
    text: bool
    json_float: bool  # a float input: untyped JSON numbers are cast to it directly
    elsewhere: str = ""  # its rows look to be on a later axis: what to send (fixed_batch.py)


def compile_rules(manifest: ModelManifest) -> tuple[InputRule, ...]:
    """The checks for every input of `manifest`, in manifest order."""
    # A batch fixed at one still takes any number of rows: the model runs them one at a time.
    first = 1 if one_row_batch(manifest) else 0
    return tuple(
        InputRule(
            spec=spec,
            dtype=BY_NAME[spec.dtype].numpy,
            static_dims=tuple(
                (axis, size) for axis, size in enumerate(spec.shape) if size != -1 and axis >= first
            ),
            batched=bool(spec.shape) and (spec.shape[0] == -1 or first == 1),
            finite=spec.finite and BY_NAME[spec.dtype].numpy.kind == "f",
            text=spec.dtype == "string",
            json_float=BY_NAME[spec.dtype].numpy.kind == "f",
            elsewhere=elsewhere_advice(manifest, spec),
        )
        for spec in manifest.inputs
    )


def _refuse_shape(manifest: ModelManifest, rule: InputRule, value: np.ndarray) -> None:
    """`_check_shape` of an input whose shape does not fit (off the path of one that does).
    Where the model's inputs (several) all fix one first dimension, it is a batch axis, even
    a 1-D input's (ids [4] beside feats [4, 8])."""
    firsts = {s.shape[0] for s in manifest.inputs if s.shape}
    shared = len(firsts) == 1 < len(manifest.inputs)
    _check_shape(
        rule.spec,
        value,
        any_rows=rule.batched,
        elsewhere=rule.elsewhere,
        shared=shared,
        advice=dynamic_batch_advice(manifest, rule.spec.name),
    )


def validate_inputs(
    manifest: ModelManifest,
    inputs: Mapping[str, np.ndarray],
    *,
    max_batch_size: int,
    typed: bool,
    rules: tuple[InputRule, ...] | None = None,
    named: bool | None = None,
) -> dict[str, np.ndarray]:
    """Return the inputs cast to the model's element types, or raise InvalidInput. `typed`:
    typed tensors, cast only where safe; `named` (default `typed`): refusals name OIP datatypes
    (FP32 (float32)), as an OIP caller knows them, also where untyped leniency applies."""
    checked: dict[str, np.ndarray] = {}
    batch: int | None = None
    for rule in rules if rules is not None else compile_rules(manifest):
        spec = rule.spec
        value = inputs.get(spec.name)
        if value is None:
            raise InvalidInput(_missing(manifest, spec, inputs))
        if rule.text or value.dtype != rule.dtype:
            if not typed and rule.json_float and value.dtype.kind in "iuf":
                value = value.astype(rule.dtype)  # the usual JSON request, as _cast does first
            else:
                value = _cast(spec, value, typed=typed, named=typed if named is None else named)
        shape = value.shape
        if len(shape) != len(spec.shape):
            _refuse_shape(manifest, rule, value)
        for axis, size in rule.static_dims:
            if shape[axis] != size:
                _refuse_shape(manifest, rule, value)
        if rule.batched:
            rows = shape[0]
            if not 0 < rows <= max_batch_size or (batch is not None and rows != batch):
                _check_batch(spec, rows, batch, max_batch_size)  # raises, naming the problem
            batch = rows
        if rule.finite and not all_finite(value):
            _check_finite(spec, value, inputs[spec.name])  # as sent: says why it is not finite
        if spec.index_rows and value.size:
            _check_rows(spec, value)
        checked[spec.name] = value
    if len(checked) != len(inputs):
        unknown = sorted(set(inputs) - set(checked))[0]
        takes = ", ".join(describe(spec) for spec in manifest.inputs)
        raise InvalidInput(f"unknown input {unknown!r}; this model takes {takes}")
    return checked


def _missing(manifest: ModelManifest, spec: TensorSpec, inputs: Mapping[str, np.ndarray]) -> str:
    """A missing input, and the names sent that the model does not take: a misspelt input
    (tritonclient's InferInput("X_in", ...) for "X") is named, not only the one it stood for."""
    message = f"missing input '{spec.name}' ({describe(spec)})"
    unknown = sorted(set(inputs) - {other.name for other in manifest.inputs})
    if unknown:
        message += f"; got {', '.join(map(repr, unknown[:5]))}, which this model does not take"
    collided = collision([other.name for other in manifest.inputs], unknown)
    return f"{message}: {collided}" if collided else message


def _check_rows(spec: TensorSpec, value: np.ndarray) -> None:
    """Ids into a table of `spec.index_rows` rows (an embedding): ONNX's Gather would read a
    negative one from the table's end, where torch refuses it. Refused as the model refuses a
    value (a 422 online; batch scores the other rows and reports this one)."""
    low, high = int(value.min()), int(value.max())
    if low >= 0 and high < spec.index_rows:
        return
    bad = low if low < 0 else high
    index = np.argwhere(value == bad)[0].tolist()
    last = spec.index_rows - 1
    if spec.sequence:  # a GRU's or LSTM's token ids, not a DataFrame's category codes
        send = (
            f"send token ids 0 to {last} (the vocabulary the model was trained with: an unknown "
            "or padding token is one of its ids, not -1 nor one past the end)"
        )
    else:
        send = (
            f"send 0 to {last} (a category code of -1, as pandas gives a missing one, is no "
            "row: map it to a row the model was trained with)"
        )
    raise ModelRefused(
        f"input '{spec.name}' has {bad} at index {index}; its values pick rows of a table of "
        f"{spec.index_rows} (an embedding): {send}",
        "Gather",
    )


def _check_batch(spec: TensorSpec, rows: int, batch: int | None, limit: int) -> int:
    if rows == 0:
        raise InvalidInput(f"input '{spec.name}' has an empty batch; send at least one row")
    if rows > limit:
        raise InvalidInput(f"input '{spec.name}' has a batch of {rows} rows; the limit is {limit}")
    if batch is not None and rows != batch:
        raise InvalidInput(f"inputs disagree on batch size ({batch} vs {rows} in '{spec.name}')")
    return rows
