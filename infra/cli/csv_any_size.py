"""Why a CSV cannot hold `aiaas publish --data`'s rows for a model of an input of any size (a
GRU's window of any length [N, -1, F], an image of any size), and which file form can.

CSV columns give rows of one fixed shape (`<input>_<i>`, as `aiaas batch` reads them), and such
an input has none: publish --data read the `x_0`, `x_1`, ... columns a user wrote for it as
records of unknown inputs and said only "line 2 has unknown input 'x_9'". JSONL (each line its
own window or image) and NPZ (one array an input, one size a file) give them.
"""

from __future__ import annotations

from pathlib import Path

from functions.runtime.batch.csv_header import expected_columns
from functions.runtime.batch.row_axis import UnsupportedModel
from functions.runtime.errors import BadRequest
from functions.runtime.manifest import ModelManifest
from functions.runtime.text_input import text_input


def refuse_unshaped_csv(path: Path, manifest: ModelManifest) -> None:
    """A BadRequest saying what to send instead, where some input of the model takes no CSV
    columns (a text model's ids are read from its text column: not refused)."""
    if text_input(manifest) is not None:
        return
    for spec in manifest.inputs:
        try:
            expected_columns(manifest, spec)
        except UnsupportedModel as exc:
            why = str(exc).split("; send ", 1)[0]
            dims = ", ".join("..." if d == -1 else str(d) for d in spec.shape[1:])
            raise BadRequest(
                f"{path}: {why}, so a CSV cannot give this model's "
                f"rows; give --data as JSONL (one record a line, each its own size: "
                f'{{"{spec.name}": [...], "label": ...}}) or NPZ (an array a input, '
                f"'{spec.name}' [N, {dims}] of one size, and 'y')"
            ) from None
