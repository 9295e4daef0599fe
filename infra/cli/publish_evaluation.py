"""The accuracy (or error) of a model before and after quantization, on the user's labelled data.

`--data FILE`, its format named by its extension as `aiaas baseline` and `explain --file` read
theirs: JSONL (.jsonl, .ndjson or .json: one record per line, as `{"instances": [...]}` takes them:
features by name, a text model's text field, or input names), CSV (.csv, .txt or no extension: a
header, then such records, or the `<input>_<i>` columns `aiaas batch` reads; numbers as written)
or NPZ (`x`, or one array per input name, and `y`). The label is the column (NPZ:
array) `--target` names, else the record's `label` column (else `target`, else `y`). Both files are run as serving runs them
(`LoadedModel.predict`, then the labels the predict API answers): classifiers are scored by
accuracy against the label, other models by RMSE against a number.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from functions.runtime import csv_fields
from functions.runtime.artifact_files import unlisted_external_data
from functions.runtime.batch.csv_header import expected_columns
from functions.runtime.codecs import simple
from functions.runtime.codecs.nulls import missing_marker
from functions.runtime.column_names import exported_name
from functions.runtime.comparison.truth import LABEL_COLUMNS
from functions.runtime.drift.watched import prediction_output
from functions.runtime.errors import AiaasError, BadRequest, InvalidInput
from functions.runtime.manifest import ArtifactFile, ModelManifest
from functions.runtime.model import LoadedModel
from functions.runtime.text_input import text_input
from infra.cli.csv_rows import refuse_binary, utf8_text
from infra.cli.file_args import file_suffix
from infra.cli.jsonl_rows import JSONL_SUFFIXES
from infra.cli.output_change import same_share

MAX_ROWS = 100_000


@dataclass(frozen=True)
class LabelledData:
    inputs: dict[str, np.ndarray]
    labels: list[Any]
    column: str  # where the labels were read from


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
        return json.loads(line)
    except ValueError as exc:
        array = (
            f"; a JSON array: jq -c '.[]' {path.name} > {path.stem}.jsonl"
            if line[:1] == "["
            else ""
        )
        raise BadRequest(
            f"{path} line {number} is no JSON record ({exc}): give one JSON object a line{array}"
        ) from None


def _records(path: Path, manifest: ModelManifest) -> list[dict[str, Any]]:
    """The records of a JSONL or CSV file; any other extension (a .gz, an .npy, an image, a CSV
    named `held.2024`) is refused saying what to do, as baseline and explain refuse it: every
    name but .csv was read as JSONL, a CSV named .txt said "Expecting value", a .gz "'utf-8'
    codec can't decode byte 0x8b"."""
    try:
        return _read_records(path, manifest)
    except BadRequest as exc:  # named as the option's other errors name the file
        raise BadRequest(f"--data {exc.message}") from None


# .json too: --data read every name but .csv as JSON lines, and `held.json` of them worked
JSON_LINES = (*JSONL_SUFFIXES, ".json")


def _read_records(path: Path, manifest: ModelManifest) -> list[dict[str, Any]]:
    jsonl = file_suffix(path) in JSON_LINES
    if not jsonl:
        refuse_binary(path, arrays=".npz")
    # As baseline reads it: Excel's byte order mark is not part of the first column's name,
    # and a file not UTF-8 (Excel's "CSV" in cp1252) names its line, not "'utf-8' codec ...".
    with utf8_text(path) as handle:
        if jsonl:
            return [_record(path, n, line) for n, line in enumerate(handle, 1) if line.strip()]
        reader = csv_fields.dict_reader(handle)
        numeric = _numeric_columns(reader.fieldnames or [], manifest)
        texts = _text_columns(reader.fieldnames or [], manifest)
        bools = {c for spec in manifest.inputs if spec.dtype == "bool"
                 for c in expected_columns(manifest, spec)}  # fmt: skip
        rows = [
            {
                k: v
                if k in texts
                else _truth(v)
                if k in bools
                else None
                if k in numeric and missing_marker(v)
                else _number(v)
                for k, v in row.items()
            }
            for row in reader
        ]
        return _gathered(rows, manifest)


def _text_columns(header: Sequence[str], manifest: ModelManifest) -> frozenset[str]:
    """The CSV columns that hold text whatever it reads like (a text "2", "911" or "NaN" was
    made a float and refused, while `aiaas batch` scored the file): a text model's text field
    and the string inputs, by name or DataFrame column ("home city": "911" was made 911.0)."""
    text = text_input(manifest)
    strings = {s.name for s in manifest.inputs if s.dtype == "string"}
    strings |= {text.field} if text is not None else set()
    return frozenset(c for c in header if c in strings or exported_name(c) in strings)


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
        rows = _records(path, manifest)[:MAX_ROWS]
    except (OSError, ValueError) as exc:
        raise BadRequest(f"--data {path}: {exc}") from None
    if not rows or not all(isinstance(row, dict) for row in rows):
        raise BadRequest(f"--data {path}: give records (JSONL objects or CSV rows) with a label")
    unlabelled = not labelled and target is None
    if unlabelled and not any(c in rows[0] for c in LABEL_COLUMNS):
        return LabelledData(_decoded(rows, manifest, path), [None] * len(rows), "")
    column = _label_column(path, rows, target)
    if any(column not in row for row in rows):
        line = next(i for i, row in enumerate(rows, 1) if column not in row)
        raise BadRequest(f"--data {path}: record {line} has no {column!r}")
    labels = [row.pop(column) for row in rows]
    return LabelledData(_decoded(rows, manifest, path), labels, column)


def _decoded(rows: list[dict[str, Any]], manifest: ModelManifest, path: Path) -> dict[str, Any]:
    try:
        return simple.decode({"instances": rows}, manifest)
    except AiaasError as exc:
        raise BadRequest(f"--data {path}: {exc.public_message}") from None


def _label_column(path: Path, rows: list[dict[str, Any]], target: str | None) -> str:
    if target is not None:
        if target not in rows[0]:
            raise BadRequest(
                f"--target {target!r} is not a column of {path}; it has {sorted(rows[0])}"
            )
        return target
    column = next((c for c in LABEL_COLUMNS if c in rows[0]), None)
    if column is None:
        raise BadRequest(
            f"--data {path}: no label column; name it with --target COLUMN (default: the first "
            f"of {list(LABEL_COLUMNS)}); it has {sorted(rows[0])}"
        )
    return column


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
    # As a table's: the first MAX_ROWS rows, inputs and labels alike (the inputs were kept
    # whole, and the pairing failed with a traceback past 100,000 rows).
    kept = {name: array[:MAX_ROWS] for name, array in inputs.items()}
    return LabelledData(kept, labels[:MAX_ROWS].tolist(), target)


def load(manifest: ModelManifest, path: Path) -> LoadedModel:
    """The model at `path` as serving loads it, before it is published."""
    return LoadedModel(_listing_own_data(manifest, path), path)


def served_answers(
    model: LoadedModel, data: LabelledData, path: Path, batch: int | None = None
) -> tuple[list[Any], Any]:
    """(the answer per row: label, or the value of the output of one value a row; the raw
    scores: that output or a classifier's scores output, the one drift bins, `prediction_output`);
    rows the model refuses are a BadRequest naming `path`, the --data file they came from. A
    classifier's first output may be skl2onnx's label output, string classes that are no number."""
    manifest = model.manifest
    raw = prediction_output(manifest)
    rows = len(data.labels)
    answers: list[Any] = []
    firsts = []
    batch = batch or model.max_batch_size
    for start in range(0, rows, batch):
        chunk = {k: v[start : start + batch] for k, v in data.inputs.items()}
        try:
            outputs = model.predict(chunk)
        except InvalidInput as exc:
            raise BadRequest(f"--data {path}: {exc.public_message}") from None
        doc = simple.encode(manifest, outputs)
        first = np.asarray(outputs[raw], dtype=np.float64)
        firsts.append(first.reshape(len(first), -1))
        if "predictions" in doc:
            answers += [row["label"] for row in doc["predictions"]]
        elif firsts[-1].shape[1] > 1:  # its column 0 was scored as the value: RMSE 11.9, R2 -16
            raise BadRequest(_several_values(manifest, raw, firsts[-1].shape[1], path))
        else:
            answers += firsts[-1][:, 0].tolist()
    return answers, np.concatenate(firsts)


def _several_values(manifest: ModelManifest, raw: str, width: int, path: Path) -> str:
    """Why `width` values a row and no label cannot be scored by --data, and what works: --labels
    only where they may be class scores (task other); a regressor's refuses it (a circle)."""
    said = (
        f"--data {path}: output {raw!r} holds {width} values a row and the model names no "
        "classes and has no output of one value a row, so nothing can be scored against the "
        "file's labels"
    )
    several = (
        "--data scores one value a row, so a regressor of several targets cannot be scored "
        "yet: publish it without --data, or publish one model per target (a "
        "MultiOutputRegressor's model.estimators_[i])"
    )
    if manifest.task == "regression":
        return f"{said}: {several}"
    return (
        f"{said}: if they are class scores, publish it with --labels (one per column) to score "
        f"it as a classifier; if they are a regressor's targets, {several}"
    )


def _listing_own_data(manifest: ModelManifest, path: Path) -> ModelManifest:
    """`manifest` listing the external data files beside `path` that the model names: the
    user's own files, evaluated before publishing (serving refuses a model naming files its
    manifest does not list; a quantized variant's source keeps its own data file names)."""
    own = unlisted_external_data(path, (f.path for f in manifest.weight_files))
    found = tuple(
        ArtifactFile(name, (path.parent / name).stat().st_size, "", "weights") for name in own
    )
    return replace(manifest, files=(*manifest.files, *found)) if found else manifest


def truth_labels(labels: list[Any], manifest: ModelManifest) -> list[str]:
    """The labels as the API names classes: as given, or class indices turned into names."""
    names = [str(int(y)) if isinstance(y, float) and y.is_integer() else str(y) for y in labels]
    count = len(manifest.labels)
    indices = all(
        isinstance(y, int | float) and float(y).is_integer() and 0 <= y < count for y in labels
    )
    if set(names) <= set(manifest.labels) or not indices:
        return names
    return [manifest.labels[int(y)] for y in labels]


def check_numeric(labels: list[Any], path: Path) -> None:
    """A model that is no classifier is scored by RMSE, so its labels must be numbers: a class
    name there means the classes were not given (the graph of a network names none)."""
    for y in labels:
        try:
            float(y)
        except (TypeError, ValueError):
            raise BadRequest(
                f"--data {path}: label {y!r} is not a number, and a model with no classes is "
                "scored as a regressor: for a classifier pass --labels, one per class"
            ) from None


def _score(manifest: ModelManifest, answers: list[Any], labels: list[Any]) -> float:
    if manifest.postprocessing is not None:
        truth = truth_labels(labels, manifest)
        return float(np.mean([a == t for a, t in zip(answers, truth, strict=True)]))
    error = np.asarray(answers, dtype=np.float64) - np.asarray(labels, dtype=np.float64)
    return float(np.sqrt(np.mean(error**2)))


def evaluate(
    before: tuple[ModelManifest, Path],
    after: tuple[ModelManifest, Path],
    path: Path,
    target: str | None = None,
    *,
    alone: bool = False,
) -> dict[str, Any]:
    """Accuracy (classifiers) or RMSE of both models on `path`, and how far their outputs
    differ; `alone`: also how far the variant's answer for a row sent alone is from its answer
    in a batch (int8's activations are scaled per request, over all its rows)."""
    data = read_data(path, before[0], target)
    if before[0].postprocessing is None:
        check_numeric(data.labels, path)
    answers_before, raw_before = served_answers(load(*before), data, path)
    variant = load(*after)
    answers_after, raw_after = served_answers(variant, data, path)
    extra = {"alone": _alone(variant, data, path, answers_after, raw_after)} if alone else {}
    metric = "accuracy" if before[0].postprocessing is not None else "rmse"
    score_before = _score(before[0], answers_before, data.labels)
    score_after = _score(after[0], answers_after, data.labels)
    agree = same_share(answers_before, answers_after, classified=metric == "accuracy")
    return {
        "data": path.name,
        "rows": len(data.labels),
        "metric": metric,
        "before": round(score_before, 6),
        "after": round(score_after, 6),
        "change": round(score_after - score_before, 6),
        "same_answer_share": round(agree, 6),
        "max_abs_output_diff": float(np.abs(raw_after - raw_before).max()),
        **extra,
    }


ALONE_ROWS = 500  # rows a variant is run on one at a time (a run each: seconds for a big model)


def _alone(
    model: LoadedModel, data: LabelledData, path: Path, batched: list[Any], raw: Any
) -> dict[str, Any]:
    """The variant on the first ALONE_ROWS rows, one row a request, against its answers for
    the same rows in the file's batches: the share answered alike and the largest change."""
    rows = min(len(data.labels), ALONE_ROWS)
    first = replace(data, inputs={k: v[:rows] for k, v in data.inputs.items()})
    first = replace(first, labels=data.labels[:rows])
    answers, scores = served_answers(model, first, path, batch=1)
    classified = model.manifest.postprocessing is not None
    same = same_share(batched[:rows], answers, classified=classified)
    return {
        "rows": rows,
        "same_answer_share": round(same, 6),
        "max_abs_output_diff": float(np.abs(scores - raw[:rows]).max()),
    }
