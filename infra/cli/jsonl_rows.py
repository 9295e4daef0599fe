"""JSONL files of model rows (`aiaas explain --file`; images also for `aiaas baseline`): one row
a line, read by batch scoring's own decoder (functions/runtime/batch/jsonl.py), so a line
`aiaas batch` scores is a line read here, and a line it refuses is refused with the same words
(a missing feature, not a number, not valid JSON). A refused line is a bad row with its reason.
A text model's lines are records with its text field (or bare strings), as batch reads them,
never a line's JSON taken for the text.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from functions.runtime.batch.jsonl import JsonlDecoder
from functions.runtime.explain.explainer import explained_columns
from functions.runtime.manifest import ModelManifest
from functions.runtime.text_input import batch_view, text_input
from infra.cli.explain_file import FileRows, json_fields
from infra.cli.file_args import require_file

JSONL_SUFFIXES = (".jsonl", ".ndjson")  # as batch's formats name them (batch/layout.py)


def read_jsonl(
    path: Path,
    manifest: ModelManifest,
    images: Callable[[np.ndarray], str | None] | None = None,
    exact: bool = False,
) -> FileRows:
    """The rows of a JSONL file: the flat rows [N, F] explanations vary (a record of feature
    names or input names, or a bare list of a row's values); with `images` (a model of any image
    size), its images, ragged when sizes differ, `images` saying what is wrong with one, if any.
    A text model's rows are its texts [N]. `exact`: as `read_rows` says it."""
    require_file(path)  # one it may not read was a traceback
    raw = path.read_bytes().split(b"\n")
    text = text_input(manifest)
    view = batch_view(manifest)  # a text model: one string column, its text field
    chunk = JsonlDecoder(view).chunk(1, raw)
    assert chunk.positions is not None  # a text format numbers its rows by line
    reasons = {error.position: error.reason for error in chunk.errors}
    if text is not None:
        rows = chunk.features[text.field]
    elif images is None:
        rows = explained_columns(manifest).flat(chunk.features, exact=exact)
    else:
        rows = chunk.features[manifest.inputs[0].name]
        for row, line in zip(rows, chunk.positions.tolist(), strict=True):
            reason = images(row)
            if reason:
                reasons[line] = reason
    lines = sorted([*chunk.positions.tolist(), *(error.position for error in chunk.errors)])
    index = {line: i for i, line in enumerate(lines)}
    refused = [i for i, line in enumerate(chunk.positions.tolist()) if line in reasons]
    if refused:
        keep = np.ones(len(rows), dtype=bool)
        keep[refused] = False
        rows = rows[keep]
    inputs = [*(spec.name for spec in view.inputs), *view.features]  # not own fields
    records = [json_fields(raw[line - 1], inputs) for line in lines]
    return FileRows(rows, {index[line]: why for line, why in reasons.items()}, lines, records)
