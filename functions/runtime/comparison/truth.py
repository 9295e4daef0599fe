"""Ground truth read beside the features: a CSV column or a JSONL field, per scored row.

The batch readers keep each scored row's record (the CSV line as read; the JSONL object without
its closing brace), so the label is read from those, only for the rows that were scored. A row
without the label (an empty cell, a missing field) has None: it counts for agreement, not for
the metrics.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections import Counter
from collections.abc import Callable, Sequence

import orjson

from functions.runtime import csv_fields
from functions.runtime.errors import BadRequest
from functions.runtime.manifest import ModelManifest
from functions.runtime.names import shown

TruthReader = Callable[[Sequence[str] | Sequence[bytes]], list[object]]
# Where the truth is when no column is named: `aiaas publish --data` (its --target) and
# `aiaas compare` (its --label, after the version's own target) read the first a file has.
LABEL_COLUMNS = ("label", "target", "y")


def truth_reader(
    label: str, columns: Sequence[str] | None, key: str, *, required: bool, width: int = 1
) -> TruthReader | None:
    """How to read `label` from the records of `key` (CSV `columns`, or JSONL when None);
    None when a CSV has no such column and the label was not asked for by name. A truth of
    `width` values a row is read from `label_0` ... where the CSV has no `label` column: a list
    of their cells a row (values.py)."""
    if columns is None:
        return lambda records: [_field(record, label) for record in records]
    several = [f"{label}_{i}" for i in range(width)] if width > 1 else []
    if label not in columns and several and all(c in columns for c in several):
        at = [list(columns).index(c) for c in several]
        return lambda records: [[_cell(record, i) for i in at] for record in records]
    if label not in columns:
        if not required:
            return None
        listed = ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")
        raise BadRequest(
            f"{key}: no column {shown(label)} to read labels from; its columns: {listed}"
        )
    index = list(columns).index(label)
    return lambda records: [_cell(record, index) for record in records]


def _cell(record: str | bytes, index: int) -> object:
    text = record.decode("utf-8", "replace") if isinstance(record, bytes) else record
    fields = next(csv_fields.reader([text]), [])
    value = fields[index] if index < len(fields) else ""
    return value if value.strip() else None  # the blanks are `class_truth`'s to judge


def _field(record: str | bytes, label: str) -> object:
    text = record.decode("utf-8", "replace") if isinstance(record, bytes) else record
    doc = json_line(text + "}")  # the record is the object without its closing brace
    value = doc.get(label) if isinstance(doc, dict) else None
    return None if type(value) is float and value != value else value  # NaN: no label


def json_line(text: str | bytes) -> object:
    """One JSON line as batch reads it (None where it is not JSON): orjson, else Python's json,
    which takes the NaN `json.dumps` writes for a missing value. orjson alone gave None for such
    a line, so its label was unread and every row with a gap left the metrics (135 of 200 rows
    labelled, accuracy 0.59 where it was 0.63 on all of them), and a first line with one hid
    the file's fields (hunt_journey13 4)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return None


def class_truth(values: Sequence[object], labels: Sequence[str]) -> list[str | None]:
    """Truth as label names: as given, or by class index when the file holds indices (0, 1,
    ...) and the model names its classes (`setosa`, ...); blanks around a text are no part of
    it unless a class has them (` setosa`: review_revinfra). A CSV cell `1.0` (pandas writes a
    column of whole numbers with a gap so) is class `1` where the model has it, as a JSON 1.0
    is: it was a class neither version knew (accuracy 0), or an index (`2.0` the third class)."""
    known = set(labels)
    texts = [None if v is None else _whole(_written(_text(v), known), known) for v in values]
    given = [t for t in texts if t is not None]
    if labels and given and not known.intersection(given) and all(_index(t, labels) for t in given):
        return [None if t is None else labels[int(float(t))] for t in texts]
    named = bool_classes(given, labels)
    return texts if named is None else [None if t is None else named[t] for t in texts]


# How a bool target is written: `True`/`False` (pandas' to_csv, Python), `true`/`false` (JSON).
BOOL_TEXTS = {"false": "0", "true": "1"}


def is_bool_text(text: str) -> bool:
    return text.lower() in BOOL_TEXTS


def bool_classes(texts: Sequence[str], labels: Sequence[str]) -> dict[str, str] | None:
    """The class each text of a bool column names, where the model says which: a class spelled
    so in another case (`True` for a model trained on `true`), or 0 and 1, as skl2onnx names the
    classes of a bool y (sklearn sorts False first). None where a text is no bool or a class
    names it as it is, or where the model does not say (`bad`, `good`: either is True)."""
    if not texts or set(texts) <= set(labels) or not all(map(is_bool_text, texts)):
        return None
    spelled = {label.lower(): label for label in labels if is_bool_text(label)}
    if len(spelled) == sum(map(is_bool_text, labels)) and {t.lower() for t in texts} <= set(
        spelled
    ):
        return {t: spelled[t.lower()] for t in set(texts)}
    if set(labels) == {"0", "1"}:
        return {t: BOOL_TEXTS[t.lower()] for t in set(texts)}
    return None


def truth_texts(values: Sequence[object], classes: Sequence[str]) -> list[str | None]:
    """Truth as text: a class of `classes` as written (` setosa`), else less its blanks."""
    known = set(classes)
    return [None if v is None else _written(_text(v), known) for v in values]


def unknown_labels(truth: Sequence[str | None], known: Sequence[str]) -> dict[str, int]:
    """Rows per true label that is none of the versions' classes (a class added to the data
    after training): such a row is an error for both, whatever they answer."""
    found = Counter(t for t in truth if t is not None and t not in set(known))
    return dict(sorted(found.items()))


def _text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 1.0 in a JSON file is class 1, as "1" is
    return str(value)


def _written(text: str, known: set[str]) -> str:
    """A class as written (a model fit on `pd.read_csv` of `5.1, 3.5, 1.4, 0.2, setosa` has the
    class ` setosa`), else less the blanks around it, as training reads a label."""
    return text if text in known else text.strip()


def _whole(text: str, known: set[str]) -> str:
    """`text`, or the whole number a float cell writes (`1.0`, `2.00`) where that names a class
    in `known` and `text` itself does not."""
    if text in known or "." not in text:
        return text
    try:
        number = float(text)
    except ValueError:
        return text
    whole = str(int(number)) if number.is_integer() else text
    return whole if whole in known else text


def _index(text: str, labels: Sequence[str]) -> bool:
    try:
        number = float(text)
    except ValueError:
        return False
    return number.is_integer() and 0 <= number < len(labels)


def number_truth(values: Sequence[object]) -> list[float | None]:
    """Truth as floats; a value that is not a number is no truth for its row."""
    found: list[float | None] = []
    for value in values:
        number = None
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            with contextlib.suppress(ValueError):
                number = float(value)
        found.append(number if number is not None and math.isfinite(number) else None)
    return found


def graph_classes(manifest: ModelManifest) -> tuple[str, ...]:
    """The classes a classifier's graph names itself (scikit-learn's `y`: `1`, `2`, `3`), in
    the order of its labels, where `--labels` renamed them (`low`, `mid`, `high`): a ZipMap's
    keys, else what publish recorded (`extras.graph_classes`); () where there are none."""
    post, labels = manifest.postprocessing, tuple(manifest.labels)
    if post is None or not labels:
        return ()
    spec = next((o for o in manifest.outputs if o.name == post.scores_output), None)
    keys = tuple(str(key) for key in spec.map_keys) if spec is not None else ()
    recorded = manifest.extras.get("graph_classes")
    if not keys and isinstance(recorded, list):
        keys = tuple(str(key) for key in recorded)
    return () if len(keys) != len(labels) or keys == labels else keys


def graph_named(values: list[object], manifest: ModelManifest) -> list[object]:
    """`values` as `manifest`'s labels where every one is a class its graph names itself
    (`graph_classes`); else as they are. Read as class indices, a file of 1s and 2s scored
    the second and third classes (accuracy 0.02 for 0.94), and one holding a 3 scored 0."""
    keys, labels = graph_classes(manifest), manifest.labels
    if not keys:
        return values
    texts = [None if v is None else _text(v).strip() for v in values]
    given = {t for t in texts if t is not None}
    if not given or given <= set(labels) or not given <= set(keys):
        return values
    return [None if t is None else labels[keys.index(t)] for t in texts]
