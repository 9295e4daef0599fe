"""The simple JSON form: `{"inputs": ...}` or `{"instances": [...]}` in, outputs + predictions out.

Accepted bodies:
- `{"inputs": [[...], ...]}`: a batch for a single-input model (one row `[...]` also works);
- `{"inputs": {"<input name>": [...], ...}}`: named inputs;
- `{"instances": [row, ...]}`: rows, each a value (single input) or `{"<input name>": value}`;
- for a model with feature names (one [N, F] input): records `{"instances": [{"<feature>": x,
  ...}, ...]}` or columns `{"inputs": {"<feature>": [x, ...], ...}}`. Other keys of a record (an
  id, the target) are ignored; a missing feature is a 422 that names it;
- for a text model: one string per row, `{"inputs": ["..."]}` or records with its text field
  `{"instances": [{"text": "..."}]}` (the model tokenizes them); token ids work as before.
A key of the body that asks for an option it cannot give (`topK`, `outputs`) is a 400
(body_refusals.py); any other is the caller's own (an id, notes), not read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from functions.runtime.codecs import nulls
from functions.runtime.codecs.body_refusals import (
    ragged,
    refuse_options,
    refuse_records_under_inputs,
    send_null,
    unknown_input,
)
from functions.runtime.codecs.class_scores import class_scores, predictions, softmax
from functions.runtime.codecs.feature_names import by_feature, missing_feature, value_columns
from functions.runtime.codecs.float_text import written
from functions.runtime.codecs.json_bools import holds_bool, json_text
from functions.runtime.codecs.ties import own_labels
from functions.runtime.codecs.wide_integers import WIDE_INTEGERS, exact_json_integers
from functions.runtime.column_names import by_input
from functions.runtime.errors import BadRequest, InvalidInput
from functions.runtime.input_messages import grey_axis_missing, number_word
from functions.runtime.manifest import ModelManifest, TensorSpec
from functions.runtime.sent_values import send_for_null
from functions.runtime.text_input import (
    PAIR_FIELD,
    filled_beside_text,
    filled_inputs,
    text_and_ids,
    text_input,
    text_under_ids,
)


def _array(
    value: object, spec: TensorSpec, bools: bool = True, raw: bytes | None = None
) -> np.ndarray:
    try:
        array = np.asarray(value)
    except ValueError:
        raise InvalidInput(ragged(value, spec)) from None
    if bools and array.dtype.kind in "iuf" and holds_bool(value):  # numpy read true as 1
        raise InvalidInput(
            f"input '{spec.name}' expects {spec.dtype} numbers; got true/false among them"
        )
    if array.dtype.kind == "U":
        # Texts: a string input's, or a text model's one a row (which tokenizes it); else a 422
        # later. numpy makes a number or boolean among texts a string (true: "True", 1.0:
        # "1.0", which the model scored as that category): keep what was sent, so it is
        # refused, as an all-number value for a string input is, and OIP's BYTES refuse it.
        sent = np.array(value, dtype=object)
        if not all(isinstance(item, str) for item in sent.flat):
            return sent
        if spec.dtype != "string":
            return array
    if array.dtype.kind == "f" and spec.dtype in WIDE_INTEGERS:
        array = exact_json_integers(value, array, spec, raw)
    if array.dtype == object and spec.dtype != "string":
        missing = nulls.nulls_as_nan(array, spec)  # null: NaN, or a 422 saying why not
        if missing is None:
            refuse_records_under_inputs(value)
            if nulls.texts_with_nulls(array):  # a text model's rows, one null: its row is named
                return array
            said = "true or false" if spec.dtype == "bool" else f"{spec.dtype} numbers"
            raise InvalidInput(f"input '{spec.name}' expects {said}; got mixed or null values")
        array = missing
    # A batch axis fixed at 1 (torch's export without dynamic axes) is one too: the only
    # reading of one rank less is one row.
    if spec.shape and spec.shape[0] in (-1, 1) and array.ndim == len(spec.shape) - 1:
        if grey_axis_missing(spec.shape, array.shape) and not _is_row(spec, array):
            return array  # grey [N, H, W], no channel axis: refused by rank, saying so
        if array.shape == (0,):  # `[]`: no rows (as one row it would be a row of width 0)
            raise InvalidInput(f"input '{spec.name}' has an empty batch; send at least one row")
        if len(spec.shape) == 2 and spec.shape[1] == 1:
            # One value a row for a [N, 1] input (skl2onnx makes one per DataFrame column):
            # a flat list or records' scalars are a column; as one row they could never fit.
            return array[:, np.newaxis]
        if _rows_without_last_axis(spec, array):
            rows = [array.shape[0], *spec.shape[1:]]
            raise InvalidInput(
                f"input '{spec.name}' expects shape {list(spec.shape)}; got {list(array.shape)}:"
                f" {array.shape[0]} rows without the last axis of 1, give each value in a list "
                f"of its own ([[[v1], [v2], ...], ...], shape {rows})"
            )  # as one row, it was told "got [1, 2, 28]", a shape the caller never sent
        array = array[np.newaxis, ...]  # one row sent without its batch axis: add it
    return array


def _rows_without_last_axis(spec: TensorSpec, array: np.ndarray) -> bool:
    """Whether `array` is a batch of an input whose last axis is 1 ([N, 28, 1]: a window of
    one value a step) sent without that axis ([2, 28]), and not one row that fits."""
    if array.ndim < 2 or spec.shape[-1] != 1 or _is_row(spec, array):
        return False
    return all(d in (-1, s) for d, s in zip(spec.shape[1:-1], array.shape[1:], strict=True))


def _is_row(spec: TensorSpec, array: np.ndarray) -> bool:
    """Whether `array` has the shape of one row of the input (a [1, H, W] grey image is)."""
    return all(d in (-1, s) for d, s in zip(spec.shape[1:], array.shape, strict=True))


BODY_FIELDS = frozenset({"inputs", "instances"})
EXPLAIN_FIELDS = BODY_FIELDS | {"parameters"}


def decode(
    body: object,
    manifest: ModelManifest,
    *,
    bools: bool = True,
    fields: frozenset[str] | None = BODY_FIELDS,
    raw: bytes | None = None,
) -> dict[str, np.ndarray]:
    """Tensors keyed by input name, typed as JSON gave them (validation casts them).
    `bools=False`: the body has no true/false literal, so none is looked for. `fields`: the
    keys the body may have (explain's also "parameters"); None: any (a request captured or
    copied once predict took it, maybe by an older aiaas that ignored other keys). `raw`: the
    JSON `body` was read from, where a refused number is looked for as it was written."""
    if not isinstance(body, dict):
        raise BadRequest('request body must be a JSON object like {"inputs": [[...]]}')
    if ("inputs" in body) == ("instances" in body):
        raise BadRequest('request body needs exactly one of "inputs" or "instances"')
    if len(body) > 1 and fields is not None:
        refuse_options(body, fields)
    if "instances" in body:
        return _instances(body["instances"], manifest, raw)
    inputs = body["inputs"]
    if type(inputs) is list and len(manifest.inputs) == 1:  # the usual request, asked first
        spec = manifest.inputs[0]
        return {spec.name: _array(inputs, spec, bools, raw)}
    if isinstance(inputs, dict) and by_feature(inputs, manifest):
        return _feature_columns(inputs, manifest)
    if isinstance(inputs, dict):
        specs = {spec.name: spec for spec in manifest.inputs}
        inputs = by_input(inputs, specs)  # a DataFrame's columns by their own names
        # An unknown input is reported by name (validation); its value may be anything, even
        # ragged, so it is not converted.
        return {
            name: _array(value, specs[name], raw=raw) if name in specs else _text_or_unknown(value)
            for name, value in inputs.items()
        }
    text = text_input(manifest)
    if text is not None and len(manifest.inputs) > 1 and (_is_text(inputs) or inputs == []):
        # A transformer's ids, mask, ... from text; an empty list is an empty batch of texts.
        return {text.input: np.array(inputs, dtype=object)}
    if len(manifest.inputs) != 1:
        refuse_records_under_inputs(inputs)
        names = [spec.name for spec in manifest.inputs]
        texts = ' {"inputs": ["a text", ...]}, or' if text is not None else ""
        raise BadRequest(
            f'this model has several inputs {names}: send{texts} {{"inputs": {{name: value}}}}'
        )
    return {manifest.inputs[0].name: _array(inputs, manifest.inputs[0], raw=raw)}


def _instances(
    rows: object, manifest: ModelManifest, raw: bytes | None = None
) -> dict[str, np.ndarray]:
    if not isinstance(rows, list) or not rows:
        raise BadRequest('"instances" must be a non-empty list of rows')
    if len(manifest.inputs) == 1 and not isinstance(rows[0], dict):
        spec = manifest.inputs[0]
        return {spec.name: _array(rows, spec, raw=raw)}
    if isinstance(rows[0], dict) and by_feature(rows[0], manifest):
        return _records(rows, manifest)
    text = text_input(manifest)
    if text is not None and isinstance(rows[0], dict):
        # A field named as the ids input (published before publish refused it): its strings
        # are the text, its ids are ids (HF text hunt #3).
        same = text.field == text.input
        both = [
            not same and isinstance(r, dict) and text.field in r and text.input in r for r in rows
        ]
        if any(both):  # answered from the ids, the text silently dropped (batch: the text)
            raise InvalidInput(text_and_ids(f"instances[{both.index(True)}]", text))
        if text.input not in rows[0] or (same and _is_text(rows[0][text.input])):
            return {text.field: _text_records(rows, text.field, filled_inputs(manifest))}
    if text is not None and _is_text(rows):
        return {text.input: _text_or_unknown(rows)}
    columns: dict[str, list[Any]] = {spec.name: [] for spec in manifest.inputs}
    specs = {spec.name: spec for spec in manifest.inputs}
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise BadRequest(f"instances[{index}] must be an object of input name -> value")
        row = by_input(row, columns)  # a DataFrame's record, its columns' own names
        missing = next((name for name in columns if name not in row), None)
        if missing is not None and text is not None and _is_text(row.get(text.input)):
            raise InvalidInput(text_under_ids(f"instances[{index}]", text))  # not "missing mask"
        if missing is not None:  # a key that is no input is then likely its misspelling
            unknown = sorted(set(row) - set(columns))
            if flat := value_columns(f"instances[{index}]", unknown, manifest):
                raise InvalidInput(flat)
            if unknown:
                raise InvalidInput(
                    unknown_input(f"instances[{index}]", missing, unknown, row, manifest)
                )
            hint = send_null(specs[missing])
            raise InvalidInput(f"instances[{index}] is missing input '{missing}'{hint}")
        # Other fields (a record's id) are left aside, as records by feature name leave them.
        for name, column in columns.items():
            column.append(row[name])
    return {name: _record_column(column, specs[name], raw) for name, column in columns.items()}


def _record_column(column: list[Any], spec: TensorSpec, raw: bytes | None) -> np.ndarray:
    """One input's values from records, a refused one named by its record (`instances[3].age`):
    a text among a float input's numbers and nulls, or a null for a string input without a
    missing category, was `got mixed or null values` / `holds a null`, no record named, so a
    caller (and `publish --data`, which names a record's line) could not tell which."""
    if spec.dtype == "string" and spec.missing is None and None in column:
        raise InvalidInput(
            f"instances[{column.index(None)}].{spec.name} is null, which a string input cannot: "
            + send_for_null(spec)
        )
    numeric = spec.dtype.startswith(("float", "int", "uint"))
    try:
        array = _array(column, spec, raw=raw)
    except InvalidInput as exc:
        raise (_not_a_number(column, spec) if numeric else None) or exc from None
    if numeric and array.dtype.kind in "OU" and (refused := _not_a_number(column, spec)):
        raise refused  # validation said `input 'age' value [3]`: no record, nor file line
    return array


def _not_a_number(column: list[Any], spec: TensorSpec) -> InvalidInput | None:
    """The 422 naming the first record whose value for a number input is text or true/false;
    None where none is (a list, a row of several values: said as it was)."""
    for index, sent in enumerate(column):
        if sent is not None and not nulls.is_number(sent) and not isinstance(sent, list | dict):
            return InvalidInput(
                f"instances[{index}].{spec.name} must be {number_word(spec.dtype)} "
                f"({spec.dtype}); "
                f"got {json_text(sent):.40}"
            )
    return None


def _is_text(value: object) -> bool:
    """A string, or a list of them: [N], or [N, 1] as a one-column table's rows come (rows of
    more texts, a pair's, too: the text input refuses them by their shape, saying so)."""
    if isinstance(value, str):
        return True
    if not isinstance(value, list):
        return False
    # Any row's text, not only the first's: a number among texts is refused by its row.
    return any(
        isinstance(row, str) or (isinstance(row, list) and bool(row) and isinstance(row[0], str))
        for row in value
    )


def _text_or_unknown(value: object) -> np.ndarray:
    # A text model also reads its text field by name; an unknown input is reported by name
    # (validation) whatever its value, even ragged, so that is not converted.
    if _is_text(value):
        return np.array(value, dtype=object)
    return np.empty(0)


def _text_records(rows: list[Any], field: str, filled: tuple[str, ...] = ()) -> np.ndarray:
    texts = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise BadRequest(f"instances[{index}] must be an object with a {field!r} field")
        if field not in row:
            raise InvalidInput(f"instances[{index}] is missing the text field {field!r}")
        sent = next((name for name in filled if name in row), None)
        if sent is not None:  # dropped unsaid, where {"inputs": ...} refuses it (refuse_filled)
            raise InvalidInput(filled_beside_text(f"instances[{index}]", sent))
        if PAIR_FIELD in row and field != PAIR_FIELD:  # a pipeline's pair: never half of it
            raise InvalidInput(
                f"instances[{index}] has a {PAIR_FIELD!r}: this model reads one text a row "
                f"(field {field!r}), not pairs of texts"
            )
        texts.append(row[field])
    return np.array(texts, dtype=object)


def _records(rows: list[Any], manifest: ModelManifest) -> dict[str, np.ndarray]:
    features = manifest.features
    table = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise BadRequest(f"instances[{index}] must be an object of feature name -> value")
        try:
            table.append([row[name] for name in features])
        except KeyError:
            missing = next(name for name in features if name not in row)
            known = set(features)  # a tuple: a record of many fields was searched per field
            stray = [key for key in row if key not in known and isinstance(key, str)]
            raise InvalidInput(
                missing_feature(f"instances[{index}]", missing, manifest, stray)
            ) from None
    spec = manifest.inputs[0]
    return {spec.name: _numbers(table, spec, features, lambda i, f: f"instances[{i}].{f}")}


def _feature_columns(inputs: dict[str, Any], manifest: ModelManifest) -> dict[str, np.ndarray]:
    features = manifest.features
    missing = next((name for name in features if name not in inputs), None)
    if missing is not None:
        known = set(features)  # a tuple: many fields were each searched through it
        stray = [key for key in inputs if key not in known]
        raise InvalidInput(missing_feature('"inputs"', missing, manifest, stray))
    columns = [inputs[name] for name in features]
    if (
        not all(isinstance(column, list) for column in columns)
        or len({len(column) for column in columns}) != 1
    ):
        raise InvalidInput('"inputs" by feature name needs one list per feature, all as long')
    spec = manifest.inputs[0]
    table = list(zip(*columns, strict=True))
    return {spec.name: _numbers(table, spec, features, lambda i, f: f"inputs.{f}[{i}]")}


def _numbers(
    table: list[Any], spec: TensorSpec, features: tuple[str, ...], where: Any
) -> np.ndarray:
    try:
        array = np.asarray(table) if table else np.empty((0, len(features)))
    except ValueError:  # a list among the values, the rest numbers: the slow path names it
        array = np.empty(0, dtype=object)
    # all true/false: validation says so; a true among numbers (numpy's 1): the slow path
    numbers = array.dtype.kind in "iufb" and array.ndim == 2
    if numbers and (array.dtype.kind == "b" or not holds_bool(table)):
        return array
    missing = False  # the slow path: say which value is wrong, or read nulls as NaN
    for index, row in enumerate(table):
        for name, value in zip(features, row, strict=True):
            if value is None and nulls.takes_missing(spec):
                missing = True
            elif value is None:
                raise nulls.null_error(spec, where(index, name))
            elif not nulls.is_number(value):
                sent = json_text(value)
                raise InvalidInput(
                    f"{where(index, name)} must be {number_word(spec.dtype)} ({spec.dtype}); "
                    f"got {sent:.40}"
                )
    return np.array(table, dtype=np.float64) if missing else array


_softmax = softmax  # tests/runtime/test_codecs_simple.py reads it here


def encode(
    manifest: ModelManifest, outputs: Mapping[str, np.ndarray], top_k: int = 1
) -> dict[str, Any]:
    """The response document; numpy arrays are left for orjson to serialise."""
    doc: dict[str, Any] = {
        "model": manifest.name,
        "version": manifest.version,
        "outputs": {name: _jsonable(array) for name, array in outputs.items()},
    }
    scores = class_scores(manifest, outputs)
    post = manifest.postprocessing
    if scores is not None and post is not None:  # scores come only with a postprocessing
        own, raw = own_labels(manifest, outputs), outputs[post.scores_output]
        doc["predictions"] = predictions(manifest, scores, top_k, own, raw)
    return doc


def _jsonable(array: np.ndarray) -> Any:
    if array.dtype == object or not array.ndim:  # orjson writes neither; tolist gives scalars
        return written(array).tolist()
    return written(array)
