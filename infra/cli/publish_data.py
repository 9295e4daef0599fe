"""The labelled rows `aiaas publish --data FILE` scores, read as `aiaas baseline` and `explain
--file` read theirs.

The format is named by the extension: JSONL (.jsonl, .ndjson or .json: one record per line, as
`{"instances": [...]}` takes them: features by name, a text model's text field, or input
names), CSV (.csv, .txt or no extension: a header, then such records, or the `<input>_<i>`
columns `aiaas batch` reads; numbers as written; a record of more or fewer cells than the
header refused, as batch refuses it) or NPZ (`x`, or one array per input name, and `y`). The
label is the column (NPZ: array) `--target` names, else the record's `label` column (else
`target`, else `y`). At most the first MAX_ROWS rows are scored; the rest are counted, not
held, and the card and publish's output say how many there were. A bad record is named by its
line in the file, as batch's error files name them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from functions.runtime import csv_fields
from functions.runtime.batch.csv_header import expected_columns, header_hint
from functions.runtime.batch.row_axis import UnsupportedModel
from functions.runtime.codecs import simple
from functions.runtime.codecs.nulls import (
    cell_text,
    missing_marker,
    nan_categories,
    nan_texts_as_null,
)
from functions.runtime.column_names import exported_name
from functions.runtime.comparison.truth import LABEL_COLUMNS
from functions.runtime.errors import AiaasError, BadRequest
from functions.runtime.image_layout import any_size_layout
from functions.runtime.lone_surrogates import lone_surrogate, surrogate_reason
from functions.runtime.manifest import ModelManifest, TensorSpec
from functions.runtime.text_input import text_input
from infra.cli.csv_any_size import refuse_unshaped_csv
from infra.cli.csv_rows import first_line, refuse_binary, utf8_text
from infra.cli.file_args import file_suffix
from infra.cli.held_out_sizes import at_lines, each_size
from infra.cli.jsonl_rows import JSONL_SUFFIXES

MAX_ROWS = 100_000  # the card says this number too (publish_card._metrics)


@dataclass(frozen=True)
class LabelledData:
    inputs: dict[str, np.ndarray]
    labels: list[Any]
    column: str  # where the labels were read from
    total: int | None = None  # rows in the file, where more than were read (MAX_ROWS)
    lines: tuple[int, ...] = ()  # the line each row starts on (none for an .npz)


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def _truth(text: str) -> Any:
    """A bool input's cell as `aiaas batch` reads it: true/false in any case (pandas' to_csv
    writes True/False) or 1/0; anything else as it is, for the input's check to name."""
    said = text.strip().lower()
    return {"true": True, "1": True, "false": False, "0": False}.get(said, text)


def _record(path: Path, number: int, line: str) -> Any:
    """One JSON line; one that is not JSON named by its line, and a JSON array file (a `.json`
    of one document) told how to write it as lines: it said "Expecting value" and no more."""
    try:
        record = json.loads(line)
    except ValueError as exc:
        array = (
            f"; a JSON array: jq -c '.[]' {path.name} > {path.stem}.jsonl"
            if line[:1] == "["
            else ""
        )
        raise BadRequest(
            f"{path} line {number} is no JSON record ({exc}): give one JSON object a line{array}"
        ) from None
    if (lone := lone_surrogate(line, record)) is not None:  # a str the tokenizer cannot take
        raise BadRequest(f"{path} line {number}: {surrogate_reason(lone)}")
    return record


@dataclass
class _Records:
    """The first MAX_ROWS records of a file, the line each starts on, the file's count, and a
    CSV's header (what a refusal names: the rows' keys are the inputs its columns were read as)."""

    rows: list[Any]
    lines: list[int]
    total: int = 0
    header: tuple[str, ...] = ()

    def counted(self) -> bool:
        """Counts a record; whether it is to be kept (fewer than MAX_ROWS are)."""
        self.total += 1
        return len(self.rows) < MAX_ROWS

    def keep(self, line: int, record: Any) -> None:
        self.rows.append(record)
        self.lines.append(line)


def _records(path: Path, manifest: ModelManifest, target: str | None) -> _Records:
    """The records of a JSONL or CSV file; any other extension (a .gz, an .npy, an image, a CSV
    named `held.2024`) is refused saying what to do, as baseline and explain refuse it: every
    name but .csv was read as JSONL, a CSV named .txt said "Expecting value", a .gz "'utf-8'
    codec can't decode byte 0x8b"."""
    try:
        return _read_records(path, manifest, target)
    except BadRequest as exc:  # named as the option's other errors name the file
        raise BadRequest(f"--data {exc.message}") from None


# .json too: --data read every name but .csv as JSON lines, and `held.json` of them worked
JSON_LINES = (*JSONL_SUFFIXES, ".json")


def _read_records(path: Path, manifest: ModelManifest, target: str | None) -> _Records:
    jsonl = file_suffix(path) in JSON_LINES
    if not jsonl:
        refuse_binary(path, arrays=".npz")
    found = _Records([], [])
    # As baseline reads it: Excel's byte order mark is not part of the first column's name,
    # and a file not UTF-8 (Excel's "CSV" in cp1252) names its line, not "'utf-8' codec ...".
    with utf8_text(path) as handle:
        if jsonl:  # a text's NaN (json.dumps of a pandas row) is its null, as batch reads it
            texts = frozenset(s.name for s in manifest.inputs if s.dtype == "string")
            nans = nan_categories(manifest.inputs)
            for number, text in enumerate(handle, 1):
                if text.strip() and found.counted():
                    record = nan_texts_as_null(_record(path, number, text), texts, nans)
                    found.keep(number, record)
            return found
        refuse_unshaped_csv(path, manifest)
        reader = csv_fields.dict_reader(handle)
        header = reader.fieldnames or []
        found.header = tuple(header)
        read = _read_columns(header, manifest, target)
        if twice := csv_fields.named_twice(str(path), header, read):
            raise BadRequest(twice)  # as batch refuses it: the last such cell was scored
        if not read and (hint := header_hint(list(header))):  # was "line 2: has 5 fields; the
            raise BadRequest(f"{path}: the header names none of the columns read{hint}")  # ... 1"
        cell = _cells(header, manifest, target)
        for row in reader:
            if not found.counted():
                continue
            line = first_line(reader.line_num, row)
            if why := reader.misshapen():  # its cells past the header were dropped, a `1,000`
                # read the row shifted; one short was a traceback (a None cell)
                raise BadRequest(f"{path}: line {line}: {why}")
            found.keep(line, {k: cell(k, v) for k, v in row.items()})
    found.rows = _gathered(found.rows, manifest)
    return found


def _cells(header: Sequence[str], manifest: ModelManifest, target: str | None) -> Any:
    """How a CSV cell of each column is read: text as it is, a bool input's as batch reads
    it, an empty or `NA` cell of a numeric column a missing value (null), else a number. The
    label column's cells stay text, for `truth_labels` to read as a class name or a number."""
    numeric = _numeric_columns(header, manifest)
    texts = _text_columns(header, manifest)
    inputs = {s.name for s in manifest.inputs}
    labels = set((target,) if target else LABEL_COLUMNS) - inputs - numeric - texts
    missing = _missing_categories(header, manifest)
    bools = {c for spec in manifest.inputs if spec.dtype == "bool"
             for c in _columns(manifest, spec)}  # fmt: skip

    def cell(column: str, value: str) -> Any:
        if column in labels:
            return value
        if column in texts:
            return cell_text(missing[column], value) if column in missing else value
        if column in bools:
            return _truth(value)
        if column in numeric and missing_marker(value):
            return None
        return _number(value)

    return cell


def _columns(manifest: ModelManifest, spec: TensorSpec) -> list[str]:
    """The `<input>_<i>` columns batch reads `spec` from; none for an input no CSV columns give
    (a sequence of token ids of any length, an image of any size: a text model's --data CSV
    gives its text field, and its ids were refused here as a batch CSV refuses them)."""
    try:
        return expected_columns(manifest, spec)
    except UnsupportedModel:
        return []


def _read_columns(
    header: Sequence[str], manifest: ModelManifest, target: str | None
) -> frozenset[str]:
    """The columns of `header` that are read: the model's (by input, feature, `<input>_<i>`
    or DataFrame column name) and the labels' (`target`, else any of LABEL_COLUMNS)."""
    text = text_input(manifest)
    names = {spec.name for spec in manifest.inputs} | set(manifest.features)
    names |= {c for spec in manifest.inputs for c in _columns(manifest, spec)}
    names |= {text.field} if text is not None else set()
    names |= {target} if target is not None else set(LABEL_COLUMNS)
    return frozenset(c for c in header if c in names or exported_name(c) in names)


def _text_columns(header: Sequence[str], manifest: ModelManifest) -> frozenset[str]:
    """The CSV columns that hold text whatever it reads like (a text "2", "911" or "NaN" was
    made a float and refused, while `aiaas batch` scored the file): a text model's text field
    and the string inputs, by name or DataFrame column ("home city": "911" was made 911.0)."""
    text = text_input(manifest)
    strings = {s.name for s in manifest.inputs if s.dtype == "string"}
    strings |= {text.field} if text is not None else set()
    return frozenset(c for c in header if c in strings or exported_name(c) in strings)


def _missing_categories(header: Sequence[str], manifest: ModelManifest) -> dict[str, TensorSpec]:
    """The string columns whose empty cell is their input's missing category (a OneHotEncoder
    fit on gaps: skl2onnx's "nan", `TensorSpec.missing`), as `aiaas batch` reads them: the cell
    was sent as "", a category the model never saw, and the card's metrics differed from
    batch's and compare's on such rows (hunt_ownmodels 1)."""
    found = {s.name: s for s in manifest.inputs if s.missing is not None}
    named = {c: found.get(c, found.get(exported_name(c))) for c in header}
    return {c: category for c, category in named.items() if category is not None}


def _gathered(rows: list[dict[str, Any]], manifest: ModelManifest) -> list[dict[str, Any]]:
    """CSV rows whose `<input>_0`, `<input>_1`, ... columns hold a [-1, F] input's values (as
    `aiaas batch` reads a model without feature names), with those columns as that input's
    list: such a file was refused ("unknown input 'X_3'") while batch scored it."""
    for spec in manifest.inputs:
        if spec.rank != 2 or spec.shape[1] < 2 or not rows or spec.name in rows[0]:
            continue
        columns = expected_columns(manifest, spec)
        if all(column in rows[0] for column in columns):
            for row in rows:
                row[spec.name] = [row.pop(column, None) for column in columns]
    return rows


def _numeric_columns(header: Sequence[str], manifest: ModelManifest) -> frozenset[str]:
    """The CSV columns that hold numbers: an empty cell (pandas' NaN) or `NA` there is a missing
    value (null), as `aiaas batch` reads it, not the text "" (an empty cell of a string column
    stays ""): a model that takes missing values gets NaN, another the 422 that says so."""
    floats = {s.name for s in manifest.inputs if s.dtype.startswith("float")}
    if len(manifest.inputs) == 1 and manifest.inputs[0].dtype.startswith("float"):
        floats |= set(manifest.features)
    # and the `<input>_<i>` columns batch reads a [-1, F] input from: their empty cells were
    # the text "", refused as "must be a number; got ''" (hunt_ownmodels 2)
    floats |= {c for s in manifest.inputs if s.dtype.startswith("float")
               for c in _columns(manifest, s)}  # fmt: skip
    return frozenset(c for c in header if c in floats or exported_name(c) in floats)


def read_data(
    path: Path, manifest: ModelManifest, target: str | None = None, *, labelled: bool = True
) -> LabelledData:
    """Inputs and labels (the `target` column, else the first of LABEL_COLUMNS) of `path`; a
    BadRequest saying what is missing. Not `labelled` (rows whose outputs are only compared):
    the labels are None where there is no such column (the column is left out where there is)."""
    try:
        if file_suffix(path) == ".npz":
            return _npz(path, manifest, target, labelled)
        found = _records(path, manifest, target)
    except (OSError, ValueError) as exc:
        raise BadRequest(f"--data {path}: {exc}") from None
    rows = found.rows
    if not rows or not all(isinstance(row, dict) for row in rows):
        raise BadRequest(f"--data {path}: give records (JSONL objects or CSV rows) with a label")
    unlabelled = not labelled and target is None
    if unlabelled and not any(
        c in rows[0] or {f"{c}_0", f"{c}_1"} <= set(rows[0]) for c in LABEL_COLUMNS
    ):
        inputs = _decoded(rows, manifest, path, found.lines)
        return LabelledData(inputs, [None] * len(rows), "", found.total, tuple(found.lines))
    column = _label_column(path, rows, target, found.header or tuple(rows[0]))
    if any(column not in row for row in rows):
        line = next(n for n, row in zip(found.lines, rows, strict=True) if column not in row)
        raise BadRequest(f"--data {path}: line {line} has no {column!r}")
    labels = [_label(row.pop(column)) for row in rows]
    if labelled and (lines := [n for n, y in zip(found.lines, labels, strict=True) if y is None]):
        raise BadRequest(
            f"--data {path}: {len(lines)} row(s) have no label in {column!r} (an empty cell or "
            f"null; the first on line {lines[0]}): give each row its true class or value, or "
            "leave those rows out"
        )
    inputs = _decoded(rows, manifest, path, found.lines)
    return LabelledData(inputs, labels, column, found.total, tuple(found.lines))


def _label(value: Any) -> Any:
    """A label as written; an empty one is none (it was "label '' is not a number ... for a
    classifier pass --labels", of a regressor's file with a gap). The blanks around a text are
    left to `truth_labels`: no part of a class name where it is none as written."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, list) and len(value) == 1 and not isinstance(value[0], list | dict):
        return _label(value[0])  # `[0.59]`: one value a row, as an NPZ's y [N, 1] is read
    return value


def _decoded(
    rows: list[dict[str, Any]], manifest: ModelManifest, path: Path, lines: list[int]
) -> dict[str, Any]:
    """The rows as the model's inputs; a refused one named by its line in the file (it was
    `instances[1].f1`, an index into a JSON body the user never wrote)."""
    try:
        return simple.decode({"instances": rows}, manifest)
    except AiaasError as exc:
        said = exc.public_message
        if " is ragged: " in said and len(manifest.inputs) == 1 and any_size_layout(manifest):
            return each_size(rows, manifest, path, lines)
        raise BadRequest(f"--data {path}: {at_lines(said, lines)}") from None


def _label_column(
    path: Path, rows: list[dict[str, Any]], target: str | None, columns: tuple[str, ...]
) -> str:
    for name in (target,) if target is not None else LABEL_COLUMNS:
        if name not in rows[0] and _gather_targets(rows, name):
            return name
    if target is not None:
        if target not in rows[0]:
            raise BadRequest(
                f"--target {target!r} is not a column of {path}; it has {list(columns)}"
            )
        return target
    column = next((c for c in LABEL_COLUMNS if c in rows[0]), None)
    if column is None:
        raise BadRequest(
            f"--data {path}: no label column; name it with --target COLUMN (default: the first "
            f"of {list(LABEL_COLUMNS)}); it has {list(columns)}"
        )
    return column


def _gather_targets(rows: list[dict[str, Any]], name: str) -> bool:
    """A forecast's targets `name_0`, `name_1`, ... (columns named as batch names an input's)
    made one list a row under `name`, as a JSONL field of them is; whether there were 2 or
    more. A CSV of 7 horizons' truth was told it had no label column."""
    count = 0
    while f"{name}_{count}" in rows[0]:
        count += 1
    if count < 2:
        return False
    for row in rows:
        row[name] = [row.pop(f"{name}_{i}", None) for i in range(count)]
    return True


def _npz(path: Path, manifest: ModelManifest, target: str | None, labelled: bool) -> LabelledData:
    """The labels as a table's: the `target` array, else the first of LABEL_COLUMNS."""
    with np.load(path, allow_pickle=False) as arrays:
        there = sorted(arrays.files)
        if target is not None and target not in arrays:
            raise BadRequest(f"--data {path}: no label array {target!r}; it has {there}")
        target = target or next((c for c in LABEL_COLUMNS if c in arrays), None)
        names = [spec.name for spec in manifest.inputs]
        single = len(names) == 1 and "x" in arrays and names[0] not in arrays
        if target is None and not labelled and (single or names[0] in arrays):
            first = arrays["x"] if single else arrays[names[0]]
            rows = np.full(len(first) if first.ndim else 0, None)
            return _npz_inputs(path, arrays, names, single, rows, "")
        if target is None:
            raise BadRequest(
                f"--data {path}: no label array; name it with --target ARRAY (default: the first "
                f"of {list(LABEL_COLUMNS)}); it has {there}"
            )
        return _npz_inputs(path, arrays, names, single, arrays[target], target)


def _npz_inputs(
    path: Path, arrays: Any, names: list[str], single: bool, labels: np.ndarray, target: str
) -> LabelledData:
    inputs = {names[0]: arrays["x"]} if single else {n: arrays[n] for n in names if n in arrays}
    for name, array in inputs.items():  # rows paired by position: a shorter one misnames
        if array.ndim == 0 or len(array) != len(labels):
            rows = "a scalar" if array.ndim == 0 else f"{len(array)} rows"
            paired = f"the label array {target!r}" if target else f"the input {names[0]!r}"
            raise BadRequest(
                f"--data {path}: the input array {'x' if single else name!r} has {rows} and "
                f"{paired} {len(labels)}; each row needs its {'label' if target else 'inputs'}"
            )
    if labels.ndim == 2 and labels.shape[1] == 1:  # a column [N, 1], as training squeezes it
        labels = labels[:, 0]
    if labels.dtype.kind == "S":  # bytes (b'setosa' was no class): text, as training reads it
        labels = np.char.decode(labels, "utf-8")
    # As a table's: the first MAX_ROWS rows, inputs and labels alike (the inputs were kept
    # whole, and the pairing failed with a traceback past 100,000 rows).
    kept = {name: array[:MAX_ROWS] for name, array in inputs.items()}
    return LabelledData(kept, labels[:MAX_ROWS].tolist(), target, len(labels))
