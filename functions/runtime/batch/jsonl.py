"""JSONL batch input: one instance per line, `{"<input>": value, ...}` or a bare value.

A bare value (a list) is allowed for single-input models; a model with feature names also
reads records, `{"<feature>": number, ...}`. Other fields (ids, ground truth) are
kept: the output line is the input object with `pred_*` fields added, the input text unchanged.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import orjson

from functions.runtime.batch.cells import PREFIX, json_cells, json_name
from functions.runtime.batch.row_reasons import EXACT_FLOAT, bad_reason, value_at
from functions.runtime.batch.scoring import (
    Chunk,
    OutputField,
    RowError,
    fits,
    row_shape,
)
from functions.runtime.batch.sizes import stacked
from functions.runtime.batch.text import decode_lines, finish_chunk
from functions.runtime.codecs import nulls
from functions.runtime.codecs.feature_names import by_feature
from functions.runtime.codecs.json_bools import holds_bool
from functions.runtime.codecs.wide_integers import as_typed, written_as_integer
from functions.runtime.column_names import by_input
from functions.runtime.dtypes import BY_NAME
from functions.runtime.errors import BadRequest, InvalidInput
from functions.runtime.input_messages import channels_hint, grey_axis_missing
from functions.runtime.lone_surrogates import lone_surrogate, surrogate_reason
from functions.runtime.manifest import ModelManifest, TensorSpec
from functions.runtime.sent_values import string_null
from functions.runtime.text_input import (
    PAIR_FIELD,
    filled_beside_text,
    filled_inputs,
    sent_beside_text,
    text_and_ids,
    text_input,
)
from functions.runtime.validation import fill_missing

NUMERIC_KINDS = {"bool": "b", "string": "U"}  # other dtypes accept ints and floats ("iuf")


# A first line that opens a JSON array of records, or is "[" alone (an indented array): no row
# is a list of objects, and no line is "[" alone.
_JSON_ARRAY = re.compile(rb"\s*\[\s*(\{|$)")
# A first line that is "{" alone: a record indented over several lines (`jq .`, json.dump with
# indent=2 a record, JSON.stringify(r, null, 2)); no JSON Lines line is.
_JSON_OPEN = re.compile(rb"\s*\{\s*$")


def check_first_line(line: bytes, key: str) -> None:
    """Refuse a file no line of which can be read, from its first line: one JSON array (what
    `json.dump(records)` and `df.to_json(orient='records')` write), records pretty-printed over
    several lines, or UTF-16 text (Windows' "Unicode"). Each was read line by line, bad row
    after bad row ("not valid JSON: Expecting property name ..." for each line of an indented
    record), and a one-line array as a bare value: "input 'x' must have shape [4] per row; got
    [2]"."""
    if line.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise BadRequest(
            f"{key}: the first line is UTF-16 text (it starts with a UTF-16 byte order mark); "
            "batch reads UTF-8 JSON Lines: save the file as UTF-8"
        )
    if _JSON_ARRAY.match(line.removeprefix(b"\xef\xbb\xbf")):
        raise BadRequest(
            f"{key}: the file is one JSON array, not JSON Lines (one record a line); write a "
            "record a line: jq -c '.[]' rows.json > rows.jsonl, or pandas' "
            "df.to_json('rows.jsonl', orient='records', lines=True)"
        )
    if _JSON_OPEN.match(line.removeprefix(b"\xef\xbb\xbf")):
        raise BadRequest(
            f"{key}: records span several lines (pretty-printed JSON: the first line is '{{' "
            "alone), not JSON Lines (one record a line); write a record a line: "
            "jq -c . rows.json > rows.jsonl, or json.dumps(record) without indent"
        )


class RowRejected(ValueError):
    """One line that cannot be scored; the message is the reason recorded for it."""


def _filled(spec: TensorSpec, value: np.ndarray) -> np.ndarray | None:
    """`fill_missing`, its refusal of an ambiguous null this line's own (not the file's)."""
    try:
        return fill_missing(spec, value)
    except InvalidInput as exc:
        raise RowRejected(exc.message) from None


class JsonlDecoder:
    """Turns batches of JSON lines into chunks."""

    def __init__(self, manifest: ModelManifest) -> None:
        self.manifest = manifest
        self.shapes = {
            spec.name: row_shape(manifest, spec, sized=False) for spec in manifest.inputs
        }
        self.single = manifest.inputs[0].name if len(manifest.inputs) == 1 else None
        # A text model scores one text a row: a pair's second text is reported, never dropped.
        text = text_input(manifest)
        self.pair = PAIR_FIELD if text is not None and PAIR_FIELD not in self.shapes else None
        self.field = text.field if text is not None else ""
        self.text, self.filled = text, filled_inputs(manifest)
        self._texts = frozenset(s.name for s in manifest.inputs if s.dtype == "string")
        self._nans = nulls.nan_categories(manifest.inputs)  # NaN apart from None

    def chunk(self, first: int, lines: list[bytes]) -> Chunk:
        _, texts, numbers, errors = decode_lines(first, lines)
        values: dict[str, list[np.ndarray]] = {name: [] for name in self.shapes}
        records: list[str] = []
        parsed = np.zeros(len(texts), dtype=bool)
        for index, text in enumerate(texts):
            if numbers[index] == 1 and text.startswith("\ufeff"):  # a UTF-8 byte order mark
                text = text[1:]
            try:
                instance, record = self._instance(text)
                instance = by_input(instance, self.shapes)  # a DataFrame's own column names
                if self.pair is not None and self.pair in instance:
                    raise RowRejected(
                        f"has a {self.pair!r}: this model reads one text a row (field "
                        f"{self.field!r}), not pairs of texts"
                    )
                self._refuse_ids(instance)
                bools = "true" in text or "false" in text  # else no true to look for
                row = {
                    spec.name: self._value(spec, instance, bools, text)
                    for spec in self.manifest.inputs
                }
            except RowRejected as exc:
                errors.append(RowError(int(numbers[index]), str(exc)))
                records.append("")
                continue
            parsed[index] = True
            records.append(record)
            for name, value in row.items():
                values[name].append(value)
        raw = {name: self._stack(name, rows) for name, rows in values.items()}
        return finish_chunk(self.manifest, len(lines), records, numbers, raw, parsed, errors)

    def _refuse_ids(self, instance: dict[str, object]) -> None:
        """A row holding ids, a mask or type ids beside its text: the online API refuses them
        together; the batch scored the text and passed the caller's ids over unsaid."""
        if self.text is None or self.field not in instance:
            return
        sent = sent_beside_text(instance, self.text, self.filled)
        if sent == self.text.input:
            raise RowRejected(text_and_ids("the row", self.text, batch=True))
        if sent is not None:
            raise RowRejected(filled_beside_text("the row", sent, batch=True))

    def _instance(self, text: str) -> tuple[dict[str, object], str]:
        """The instance as input name -> value, and the line without its closing brace."""
        try:
            data = orjson.loads(text)  # ~4x json's speed; strict JSON only
        except orjson.JSONDecodeError:
            try:  # json also reads NaN, Infinity and integers beyond 64 bits, and says what is
                data = json.loads(text)  # wrong in words users know
                data = nulls.nan_texts_as_null(data, self._texts, self._nans)  # json.dumps' NaN
            except ValueError as exc:
                raise RowRejected(f"not valid JSON: {getattr(exc, 'msg', exc)}") from None
            except RecursionError:
                raise RowRejected("not valid JSON: nested too deeply") from None
            lone = lone_surrogate(text, data)  # json reads "\ud83d" alone; nothing encodes it
            if lone is not None:
                raise RowRejected(surrogate_reason(lone)) from None
        if isinstance(data, dict):
            taken = sorted(k for k in data if k.startswith(PREFIX))
            if taken:
                raise RowRejected(
                    f"field {taken[0]!r} starts with {PREFIX!r}, where predictions go; rename it"
                )
            return data, text.rstrip()[:-1].rstrip()
        if isinstance(data, list) and self.single:
            return {self.single: data}, f"{{{json.dumps(self.single)}: {text.strip()}"
        wanted = ", ".join(f'"{name}": ...' for name in self.shapes)
        raise RowRejected(f"expected a JSON object like {{{wanted}}}")

    def _value(
        self, spec: TensorSpec, instance: dict[str, object], bools: bool, text: str
    ) -> np.ndarray:
        if self.manifest.features and by_feature(instance, self.manifest):
            return self._record(spec, instance)  # a feature named as the input too: x, y
        if spec.name not in instance and spec.name == self.field:  # a text model's text
            raise RowRejected(f"missing the text field {self.field!r}; there is no text to score")
        if spec.name not in instance:
            raise RowRejected(f"missing input '{spec.name}'")
        if spec.name == self.field and instance[spec.name] is None:  # was a table's advice:
            raise RowRejected(f"'{self.field}' is null; there is no text to score")  # send ""
        want = self.shapes[spec.name]
        try:
            value = np.asarray(instance[spec.name])
        except ValueError as exc:  # numpy cannot stack it: say the shape that was wanted
            got = (
                "nested over 64 deep"
                if "maximum number of dim" in str(exc)
                else "of unequal lengths"
            )
            raise RowRejected(
                f"input '{spec.name}' must have shape {shape_text(want)} per row; got lists {got}"
            ) from None
        if value.ndim == 0 and want == (1,):  # a [N, 1] input (one per DataFrame column):
            value = value.reshape(want)  # a number a row, as its CSV column gives it
        allowed = NUMERIC_KINDS.get(spec.dtype, "iuf")
        if value.shape != want and not fits(want, value.shape):  # equal: the common case
            if value.ndim == 0 and value.dtype.kind not in allowed + "O":
                raise _wrong_kind(spec, value)  # "x": "a photo": no shape says what is wrong
            if isinstance(instance[spec.name], dict):  # numpy's 0-d object: it said "got []"
                hint = "" if self.manifest.features else " (fields by name need --features)"
                raise RowRejected(
                    f"input '{spec.name}' must have shape {shape_text(want)} per row; got a JSON "
                    f"object{hint}"
                )
            raise RowRejected(
                f"input '{spec.name}' must have shape {shape_text(want)} per row; got "
                f"{list(value.shape)}{_batch_axis_hint(want, value.shape)}"
                f"{channels_hint((-1, *want), (1, *value.shape), one=True)}"
                f"{grey_axis_missing((-1, *want), value.shape, one=True)}"
            )
        integer = allowed == "iuf" and BY_NAME[spec.dtype].numpy.kind in "iu"
        if integer and value.dtype == object and _only_integers(instance[spec.name]):
            return _integers(spec, value, instance[spec.name], text)  # past 64 bits: json's ints
        filled = None
        if value.dtype == object and spec.dtype != "string":
            value = _nulls(spec, value)  # null: NaN where the model takes missing values
        elif value.dtype == object and (filled := _filled(spec, value)) is not None:
            value = filled.astype(str)  # null: the category scikit-learn gave missing values
        if (
            spec.dtype == "string"  # a number input's texts are its own error (_wrong_kind)
            and value.dtype.kind == "U"
            and value.ndim
            and not _only_texts(instance[spec.name], nulls=filled is not None)
        ):
            # numpy made 1.0 the text "1.0" and true "True", scored as those categories; a value
            # alone (1.0) is refused, and the predict route refuses this too
            raise RowRejected(
                f"input '{spec.name}' must hold strings; got a number or true/false among its "
                "texts: send each value as a JSON string"
            )
        if value.dtype.kind not in allowed:
            raise _wrong_kind(spec, value)
        if bools and allowed == "iuf" and holds_bool(instance[spec.name]):  # numpy's 1 or 0
            raise RowRejected(
                f"input '{spec.name}' must hold {spec.dtype} numbers; got true/false among them"
            )
        if integer:
            return _integers(spec, value, instance[spec.name], text)
        return value

    def _record(self, spec: TensorSpec, instance: dict[str, object]) -> np.ndarray:
        """The row of a record that names features, in the model's feature order."""
        row = []
        for name in self.manifest.features:
            if name not in instance:
                raise RowRejected(f"missing feature '{name}' (or input '{spec.name}')")
            value = instance[name]
            if value is None and nulls.takes_missing(spec):
                value = math.nan
            elif value is None:
                raise RowRejected(nulls.null_error(spec, f"feature '{name}'").message)
            elif isinstance(value, bool) or not isinstance(value, int | float):
                raise RowRejected(f"feature '{name}' must be a number; got {value!r:.40}")
            row.append(value)
        return np.asarray(row)

    def _stack(self, name: str, rows: list[np.ndarray]) -> np.ndarray:
        if rows:
            return stacked(rows)  # images of several sizes: ragged, scored a size at a time
        return np.zeros((0, *(max(0, d) for d in self.shapes[name])), dtype=np.float64)


def _batch_axis_hint(want: tuple[int, ...], got: tuple[int, ...]) -> str:
    """A line holding one row inside a batch of one (`[image]`, `[1, 3, 32, 32]`, as a predict
    request may send it): a line is one row already."""
    if len(got) != len(want) + 1 or got[0] != 1 or not fits(want, got[1:]):
        return ""
    return "; a line holds one row: leave out its batch axis of 1 (send value[0])"


def _integers(spec: TensorSpec, value: np.ndarray, written: object, text: str) -> np.ndarray:
    """A row of an integer input in the input's own type, or refused: stacked with the chunk's
    other rows as they came, one row's float (6.0, or a bad 5.5) made the whole chunk float64,
    and an int64 written exactly in another row (9223372036854775807, a hashed id) was refused
    as past 2**53, its value misquoted. `written`: the row as JSON gave it (numpy makes
    [2**64 - 1, 0] a float64 array, and [2**64, 0] one of objects); `text`: its line."""
    target = BY_NAME[spec.dtype].numpy
    info = np.iinfo(target)  # type: ignore[type-var]
    exact = value
    if value.dtype.kind in "fO" and _only_integers(written):
        exact = np.array(written, dtype=object).reshape(value.shape)  # Python's ints, exact
    elif value.dtype.kind == "f":  # 6.0 is 6 (JSON encoders write a float column so)
        if not (np.isfinite(value).all() and (np.floor(value) == value).all()):
            raise RowRejected(bad_reason(spec, _as_written(written, text)))
        if value.size and np.abs(value).max() >= EXACT_FLOAT:
            raise RowRejected(bad_reason(spec, _as_written(written, text)))
        exact = value.astype(np.int64)
    if exact.size and (int(exact.min()) < info.min or int(exact.max()) > info.max):
        raise RowRejected(bad_reason(spec, _as_written(written, text)))
    return exact.astype(target)


def _as_written(written: object, text: str) -> np.ndarray:
    """A refused row's values as its line wrote them, for the reason to quote and judge: an
    integer as Python's int (2**63 as a float64 passed int64's range test, float(2**63 - 1)
    being 2**63, and was called "read as a float"), and one past 64 bits, which orjson reads
    as the float nearest it, as the digits written (not 1e+23)."""
    body = text.encode()
    items = []
    for item in np.array(written, dtype=object).reshape(-1).tolist():
        try:
            digits = as_typed(item, body) if written_as_integer(item, body) else None
        except (OverflowError, ValueError):  # a field's string of 309 digits or more
            digits = None
        items.append(item if digits is None else int(digits))
    return np.array(items, dtype=object)


def _only_integers(written: object) -> bool:
    if isinstance(written, list):
        return all(map(_only_integers, written))
    return isinstance(written, int) and not isinstance(written, bool)


def _only_texts(written: object, nulls: bool = False) -> bool:
    """Whether `written` holds texts alone (and nulls, where they were filled as missing)."""
    if isinstance(written, list):
        return all(_only_texts(item, nulls) for item in written)
    return isinstance(written, str) or (nulls and written is None)


def _wrong_kind(spec: TensorSpec, value: np.ndarray) -> RowRejected:
    kinds = {"string": "strings", "bool": "true/false"}  # "bool numbers" said of 1/0
    kind = kinds.get(spec.dtype, f"{spec.dtype} numbers")
    null = string_null(spec, value)
    if null is not None:
        return RowRejected(null)
    got = _kind(value)
    if value.size == 1 and spec.shape[1:] == (1,) and value.dtype.kind in "UO":
        got += f" {value.reshape(-1).tolist()[0]!r:.40}"  # one column's cell: say it, as a feature's is
    return RowRejected(f"input '{spec.name}' must hold {kind}; got {got}")


def _nulls(spec: TensorSpec, value: np.ndarray) -> np.ndarray:
    """An object array of numbers and nulls as float64 with NaN, for an input that takes
    missing values; else the row's error, naming the value as scoring's reasons do."""
    index = nulls.first_null(value)
    if index is None:
        return value  # text, true/false, objects: the kind check says what
    if not nulls.takes_missing(spec):
        where = f"input '{spec.name}'"
        if value.size > 1:
            where += value_at(value.shape, int(np.ravel_multi_index(index, value.shape)))
        raise RowRejected(nulls.null_error(spec, where).message)
    return value.astype(np.float64)


def shape_text(shape: tuple[int, ...]) -> str:
    """A row shape as an error shows it: a dynamic dimension (an image's height) as "any"."""
    return "[" + ", ".join("any" if d == -1 else str(d) for d in shape) + "]"


def _kind(value: np.ndarray) -> str:
    return {"b": "true/false", "U": "text", "O": "mixed or null values"}.get(
        value.dtype.kind, str(value.dtype)
    )


def jsonl_body(chunk: Chunk, outputs: dict[str, np.ndarray], fields: list[OutputField]) -> bytes:
    """The scored lines of `chunk`: each input object with its `pred_*` fields added."""
    if not chunk.records:
        return b""
    cells = []
    for field in fields:
        key = json.dumps(json_name(field))
        cells.append([f"{key}: {cell}" for cell in json_cells(field, outputs[field.name])])
    lines = (
        f"{record}, {', '.join(parts)}}}"
        for record, parts in zip(chunk.records, zip(*cells, strict=True), strict=True)
    )
    return ("\n".join(lines) + "\n").encode()
