"""Captured lines as rows by feature name, plus the prediction served: what `aiaas batch` and
a training spec read (CSV or JSONL).

Columns: `time`, `request_id`, `version`; the model's inputs as batch scoring names them
(its feature names, else `x` or `x_0` ... `x_{F-1}`; a text model's text field); then the
served prediction as `served_label` and `served_score` (classifiers), and each output as
`served_<output>` or `served_<output>_<i>`. A denied value is empty (null). Not `pred_*`:
`aiaas batch` adds those when it scores the file again.

`nested` (a JSONL export): an input whose row is more than one value and not named by
features (an image, a [N, F] input without feature names, each input of a multi-input model)
is one field by its name holding its row as nested lists, as batch JSONL reads it
(`{"x": [[...], ...]}`); flat columns could not be read back by input name. A CSV (flat)
cannot hold a row of dynamic size (an image of any height and width, a sequence): batch CSV
refuses such a model, so its export is refused too, rather than cut to a fixed width.

A text model's line that sent token ids, not text (`{"inputs": {"input_ids": [[...]]}}`), has
no text to export: `rows_of` raises `TokenIds` and the export skips and counts it. Its ids have
no fixed width, so reading them as columns refused the whole export (one ids client made a
month of texts unexportable).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from functions.runtime.codecs.class_scores import class_scores, predictions
from functions.runtime.errors import AiaasError, BadRequest
from functions.runtime.manifest import ModelManifest, TensorSpec
from functions.runtime.text_input import text_input

META = ("time", "request_id", "version")
SERVED = "served_"

Row = dict[str, Any]


class TokenIds(Exception):
    """A text model's captured line sent token ids, not text: no row of its text field."""


def columns_of(spec: TensorSpec) -> list[str]:
    """An input's columns, as batch CSV names them (functions/runtime/batch/csv.py); its row
    shape is fixed (`csv_refusal` says why a dynamic one has no columns)."""
    dims = spec.shape[1:]
    if any(d < 0 for d in dims):  # the positive dims alone kept 3 values of a [N, 3, H, W] image
        raise BadRequest(f"input '{spec.name}' has rows of dynamic shape {list(spec.shape)}")
    width = math.prod(dims) if len(spec.shape) > 1 else 1
    return [spec.name] if width == 1 else [f"{spec.name}_{i}" for i in range(width)]


def whole_inputs(manifest: ModelManifest) -> list[TensorSpec]:
    """The inputs a JSONL export writes whole, by input name (see the module's doc): none for a
    text model (its text field) or a model with feature names (its features)."""
    if text_input(manifest) is not None or manifest.features:
        return []
    return [s for s in manifest.inputs if len(s.shape) > 1 and tuple(s.shape[1:]) != (1,)]


def csv_refusal(manifest: ModelManifest) -> str | None:
    """Why a CSV cannot hold this model's rows (an input of dynamic row shape), or None."""
    for spec in whole_inputs(manifest):
        dynamic = [str(axis) for axis, size in enumerate(spec.shape) if size < 0 and axis > 0]
        if dynamic:
            return (
                f"model {manifest.name}:{manifest.version} reads input '{spec.name}' of shape "
                f"{list(spec.shape)}: dimension(s) {', '.join(dynamic)} are dynamic, so its rows "
                "have no fixed CSV columns (aiaas batch reads such a model from JSONL or .npy, "
                f"not CSV); export to JSONL instead: aiaas capture export {manifest.name} "
                f"--out {manifest.name}.jsonl (each row's '{spec.name}' whole, as captured)"
            )
    return None


def rows_of(line: Mapping[str, Any], manifest: ModelManifest, *, nested: bool = False) -> list[Row]:
    """One captured line as rows (one per row of its request): CSV columns, or (`nested`)
    JSONL fields with each whole input by its name. Flat rows of a model whose rows have
    dynamic dimensions are refused (BadRequest, `csv_refusal`), never cut short."""
    whole = {spec.name for spec in whole_inputs(manifest)} if nested else set()
    if not nested and (refusal := csv_refusal(manifest)) is not None:
        raise BadRequest(refusal)
    # Every column the model reads, empty where a request did not carry it (a denied field):
    # the CSV's header dropped a denied feature when no request held it, and kept it as an
    # empty column when a positional request did.
    inputs = {
        **{column: [] for column in _read_columns(manifest, whole)},
        **_inputs(line.get("request"), manifest, whole),
    }
    served = _served(line.get("response"), manifest)
    count = max((len(v) for v in (*inputs.values(), *served.values())), default=0)
    meta = {key: line.get(key) for key in META}
    return [
        {
            **meta,
            **{name: _at(values, i) for name, values in inputs.items()},
            **{name: _at(values, i) for name, values in served.items()},
        }
        for i in range(count)
    ]


def _read_columns(manifest: ModelManifest, whole: set[str]) -> list[str]:
    text = text_input(manifest)
    if text is not None:
        return [text.field]
    if manifest.features:
        return list(manifest.features)
    return [
        column
        for spec in manifest.inputs
        for column in ([spec.name] if spec.name in whole else columns_of(spec))
    ]


def _at(values: list[Any], index: int) -> Any:
    return values[index] if index < len(values) else None


def _inputs(body: Any, manifest: ModelManifest, whole: set[str]) -> dict[str, list[Any]]:
    """Column name -> one value per row, from any request form the predict routes take."""
    if not isinstance(body, dict):
        return {}
    raw = body.get("instances", body.get("inputs"))
    named: Mapping[Any, Any]
    if isinstance(raw, list) and raw and isinstance(raw[0], dict) and "datatype" in raw[0]:
        named = {t.get("name"): _shaped(t) for t in raw}
    elif isinstance(raw, list) and raw and isinstance(raw[0], dict):  # records
        keys = dict.fromkeys(k for row in raw if isinstance(row, dict) for k in row)
        named = {k: [r.get(k) for r in raw if isinstance(r, dict)] for k in keys}
    elif isinstance(raw, dict):  # named inputs, or columns by feature name
        named = raw
    else:
        named = {manifest.inputs[0].name: raw}
    return _columns(named, manifest, whole)


def _shaped(tensor: Mapping[str, Any]) -> Any:
    data, shape = tensor.get("data"), tensor.get("shape")
    try:
        return np.array(data, dtype=object).reshape(shape).tolist()
    except (ValueError, TypeError):
        return data


def _columns(
    named: Mapping[Any, Any], manifest: ModelManifest, whole: set[str]
) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    features, specs = manifest.features, {s.name: s for s in manifest.inputs}
    text = text_input(manifest)
    ids = False  # a text model's input sent as token ids
    for name, values in named.items():
        if text is not None and name == text.field:
            # By the text field's name (records, an OIP BYTES tensor named `text`): an [N, 1]
            # or [1, 1] tensor's rows are one-string lists, exported as `['...']` that batch
            # then scored as that literal text.
            out[name] = [_one_text(v) for v in (values if isinstance(values, list) else [values])]
            continue
        if name in features:
            out[name] = values if isinstance(values, list) else [values]
            continue
        spec = specs.get(name)
        if spec is not None and text is not None and isinstance(values, str):
            # One text without a list (`{"inputs": "..."}`, an OIP BYTES tensor of shape []) is
            # one row, as the routes answer it: it was exported as a null text.
            values = [values]
        if spec is None or not isinstance(values, list):
            continue
        if text is not None:  # its texts; ids (dynamic width) have no fixed columns
            texts = _texts(values)
            if texts is not None:
                out[text.field] = texts
            ids = ids or texts is None
            continue
        # One row sent without its batch axis (a rank less) is one row, as the routes read it:
        # an [8, 8, 3] image was 8 rows of 24 values.
        batch = values if _depth(values) >= len(spec.shape) else [values]
        if name in whole:  # each row whole, as sent
            out[name] = batch
            continue
        if len(spec.shape) <= 1 or (len(columns_of(spec)) == 1 and not _nested(values)):
            # One value a row: a 1-D input, or a column input ([N, 1]) sent as records or
            # as a flat column (a DataFrame model's `{"instances": [{...}, ...]}`).
            rows: list[Any] = [[v] for v in values]
        else:
            rows = batch
        flat = [np.array(r, dtype=object).ravel().tolist() for r in rows]
        names = list(features) if features and name == manifest.inputs[0].name else None
        for j, column in enumerate(names or columns_of(spec)):
            out[column] = [r[j] if j < len(r) else None for r in flat]
    if ids and text is not None and text.field not in out:
        raise TokenIds(text.field)  # token ids alone (a mask beside a text is dropped)
    return out


def _texts(values: list[Any]) -> list[Any] | None:
    """A text model's texts as sent: a list of strings, or [N, 1] rows of one (OIP BYTES). A
    null is a text a deny-list removed (redact.py), never a token id: such lines were skipped
    as "sent token ids"."""
    if values and (isinstance(values[0], str) or all(v is None for v in values)):
        return values
    if values and all(isinstance(r, list) and len(r) == 1 and _text(r[0]) for r in values):
        return [r[0] for r in values]
    return None


def _text(value: Any) -> bool:
    return isinstance(value, str) or value is None


def _one_text(row: Any) -> Any:
    """A text row as sent: a string, or a row holding one string ([N, 1] OIP BYTES) as that
    string, as the OIP route reads it; anything else as it is."""
    if isinstance(row, list):
        flat = np.array(row, dtype=object).ravel().tolist()
        if len(flat) == 1 and isinstance(flat[0], str):
            return flat[0]
    return row


def _nested(values: list[Any]) -> bool:
    return bool(values) and isinstance(values[0], list)


def _depth(value: Any) -> int:
    """How deep lists nest in `value`, along its first items (a batch of [3, H, W]: 4)."""
    depth = 0
    while isinstance(value, list) and value:
        depth, value = depth + 1, value[0]
    return depth + isinstance(value, list)  # an empty list is one level more


def _served(body: Any, manifest: ModelManifest) -> dict[str, list[Any]]:
    """`served_*` column -> one value per row, from a simple or an OIP answer."""
    if not isinstance(body, dict):
        return {}
    out: dict[str, list[Any]] = {}
    predictions = body.get("predictions")
    if predictions is None and isinstance(body.get("outputs"), list):
        predictions = _oip_predictions(body["outputs"], manifest)
    if isinstance(predictions, list):
        out[SERVED + "label"] = [p.get("label") for p in predictions]
        out[SERVED + "score"] = [p.get("score") for p in predictions]
    outputs = body.get("outputs")
    post = manifest.postprocessing
    ranked = None  # the output answered as its best classes (the classification extension)
    if isinstance(outputs, list):  # OIP: tensors
        tensors = [t for t in outputs if isinstance(t, dict)]
        if post is not None and any(
            t.get("name") == post.scores_output and t.get("datatype") == "BYTES" for t in tensors
        ):
            ranked = post.scores_output
        outputs = {t.get("name"): _shaped(t) for t in tensors}
    own = post.label_output if post is not None and isinstance(predictions, list) else None
    for name, values in (outputs or {}).items():
        if name == own:  # skl2onnx's `label`: served_label says what the API answered (batch
            continue  # leaves the model's own label out beside its pred_label too)
        if name == ranked:  # "score:index:label" strings, best first: not the class scores
            columns = dict(_ranked_columns(SERVED + str(name), values))
        else:
            columns = dict(_output_columns(SERVED + str(name), values))
        if out.keys() & columns.keys():  # an output `score` would overwrite served_score
            columns = dict(_output_columns(f"{SERVED}output_{name}", values))
        out.update(columns)
    return out


def _oip_predictions(tensors: list[Any], manifest: ModelManifest) -> list[Any] | None:
    """A classifier's label and score per row, made from an OIP answer's class scores as the
    simple route makes them (OIP answers carry only the tensors)."""
    post = manifest.postprocessing
    if post is None:
        return None
    named = {t.get("name"): t for t in tensors if isinstance(t, dict)}
    answered = named.get(post.scores_output)
    if answered is not None and answered.get("datatype") == "BYTES":  # class_count asked
        return _top_classes(answered)
    label = named.get(post.label_output) if post.label_output else None
    if answered is None and label is not None:  # the model's own labels alone: no score
        return [{"label": str(v), "score": None} for v in label.get("data") or ()]
    try:
        outputs = {
            t["name"]: np.asarray(t["data"]).reshape(t["shape"])
            for t in tensors
            if isinstance(t, dict) and t.get("datatype") != "BYTES"
        }
        scores = class_scores(manifest, outputs)
        own = np.asarray(label.get("data") or ()) if label is not None else None  # settles ties
    except (AiaasError, KeyError, ValueError, TypeError):
        return None  # not this version's tensors: the outputs alone are exported
    return None if scores is None else predictions(manifest, scores, 1, own)


def _top_classes(tensor: Mapping[str, Any]) -> list[Any] | None:
    """Label and score of each row's best class, from a classification extension answer:
    [rows, k] strings "score:index[:label]", best first (oip_classification.py)."""
    try:
        rows = np.asarray(tensor["data"], dtype=object).reshape(tensor["shape"])
        best = [str(row.ravel()[0]).split(":", 2) for row in rows]
        return [{"label": b[-1], "score": float(b[0])} for b in best]
    except (KeyError, ValueError, TypeError, IndexError):
        return None  # not the extension's strings: the outputs alone are exported


def _ranked_columns(base: str, values: Any) -> Iterator[tuple[str, list[Any]]]:
    """A class-count answer's `<base>_top_1`... (best first), whatever k the caller asked:
    in `<base>_<i>` (the class scores' columns, as the simple route and plain OIP answers fill
    them) a "score:index:label" string sat under class i's score of the rows beside it."""
    rows = values if isinstance(values, list) else [values]
    flat = [np.array(r, dtype=object).ravel().tolist() for r in rows]
    for j in range(max((len(r) for r in flat), default=1)):
        yield f"{base}_top_{j + 1}", [r[j] if j < len(r) else None for r in flat]


def _output_columns(base: str, values: Any) -> Iterator[tuple[str, list[Any]]]:
    rows = values if isinstance(values, list) else [values]
    flat = [np.array(r, dtype=object).ravel().tolist() for r in rows]
    width = max((len(r) for r in flat), default=1)
    if width == 1:
        yield base, [r[0] if r else None for r in flat]
        return
    for j in range(width):
        yield f"{base}_{j}", [r[j] if j < len(r) else None for r in flat]
