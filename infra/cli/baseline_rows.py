"""The training rows `aiaas baseline` reads, refused as batch scoring refuses them.

A baseline is written once (versions are immutable): rows stored wrong (16-bit pixels for a
uint8 model, pixels scaled to [0, 1]) made a background and drift bins that no served request
matches, with no way to replace them but publishing again. So every row is checked before
anything is written, by batch's own per-row casts and reasons (batch/scoring.py,
batch/row_reasons.py), and the first bad one is named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from functions.runtime.batch.scoring import coerce_rows
from functions.runtime.batch.sizes import is_ragged
from functions.runtime.dtypes import BY_NAME
from functions.runtime.errors import AiaasError, BadRequest
from functions.runtime.manifest import ModelManifest
from functions.runtime.text_input import text_input
from infra.cli.csv_rows import read_rows
from infra.cli.explain_file import FileRows
from infra.cli.file_args import file_suffix, is_file
from infra.cli.jsonl_rows import JSONL_SUFFIXES, read_jsonl


def training_rows(path: Path, manifest: ModelManifest) -> np.ndarray:
    """A baseline's rows: a JSONL file's read as `aiaas batch` reads its lines, else a CSV's or
    an .npy's (`read_rows`), their values checked as batch checks them (`cast_refusals`)."""
    if file_suffix(path) in JSONL_SUFFIXES and is_file(path) and text_input(manifest) is None:
        rows = every_row(path, read_jsonl(path, manifest)).rows  # batch's decoder checked them
    else:
        lines: list[int] = []
        rows = read_rows(path, manifest, lines=lines)
        every_row(path, FileRows(rows, cast_refusals(manifest, rows), lines or None))
    if not len(rows):  # a header alone, an empty JSONL: nothing to summarize or bin
        raise BadRequest(f"{path}: no rows; a baseline needs rows of the training data")
    return rows


def every_row(path: Path, read: FileRows) -> FileRows:
    """Training data: every row counts, or the user says which to leave out (the first bad one
    named, with how many there are)."""
    if read.bad:
        row, why = min(read.bad.items())
        where = f"line {read.lines[row]}" if read.lines else f"row {row}"
        raise BadRequest(f"{path}: {where}: {why}; fix or remove it ({len(read.bad)} bad)")
    return read


def cast_refusals(manifest: ModelManifest, rows: np.ndarray) -> dict[int, str]:
    """{row: why} for the rows of a single integer (or bool) input that batch, predict and
    explain refuse: values out of the type's range, fractions (with the "pixels scaled to
    [0, 1]" hint for a uint8 model), each said in batch's words. A row with a missing value
    (NaN) is left to `fit`, which says what to do about those."""
    if len(manifest.inputs) != 1 or not len(rows):
        return {}
    spec = manifest.inputs[0]
    target = BY_NAME.get(spec.dtype)
    if target is None or target.numpy.kind not in "biu" or np.asarray(rows).dtype == object:
        return {}
    if is_ragged(rows):  # images of several sizes: each checked on its own
        gaps = np.array([np.isnan(np.asarray(r, dtype=np.float64)).any() for r in rows])
    else:
        flat = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
        gaps = np.asarray(np.isnan(flat).any(axis=1))
    _, _, errors = coerce_rows(manifest, {spec.name: rows}, np.arange(len(rows)))
    return {e.position: e.reason for e in errors if not gaps[e.position]}


SCORED_AT_ONCE = 8192  # data rows scored a call, looking for the ones the model cannot score


def check_scorable(model: Any, background: Any, rows: np.ndarray, path: Path) -> None:
    """A BadRequest, before anything is written, when the model answers NaN or infinity for
    the background, quoting the first data row it does so for: every explanation against it
    was a 500 blaming the model, and a background is written once (float32 values near its
    limit, 3e38, are in range but overflow a linear model's output)."""
    from functions.runtime.explain.explainer import Explainer
    from functions.runtime.input_columns import as_type

    target = Explainer(model, background, float("inf")).target
    try:
        with np.errstate(all="ignore"):
            base = target(as_type(background.rows, target.dtype))
    except AiaasError:  # an output explanations cannot take (not one row a row): theirs to say
        return
    if np.isfinite(base).all():
        return
    codes = target.codes.copy()
    numbered = codes.encode(rows)
    first = None
    with np.errstate(all="ignore"):
        for start in range(0, len(numbered), SCORED_AT_ONCE):
            chunk = as_type(numbered[start : start + SCORED_AT_ONCE], target.dtype)
            bad = np.flatnonzero(~np.isfinite(target.score(chunk, codes)).all(axis=1))
            if len(bad):
                first = start + int(bad[0])
                break
    ref = f"{model.manifest.name}:{model.manifest.version}"
    where = ""
    if first is not None:  # its values: a row index would skip the rows left out with gaps
        cells = [f"{v:g}" if isinstance(v, float) else str(v) for v in rows[first][:6].tolist()]
        where = f" (one is the row {', '.join(cells)}{', ...' if rows.shape[1] > 6 else ''})"
    raise BadRequest(
        f"{path}: {ref} answers NaN or infinity for {int((~np.isfinite(base).all(axis=1)).sum())} "
        f"of the background's {len(base)} rows, summarised from these rows{where}: every "
        "explanation against it would fail, and a background is written once; leave out or "
        "fix the rows the model cannot score, nothing was written"
    )
