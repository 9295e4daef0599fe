"""`publish --data`'s rows as a JSON body's `instances` would name them, by the line of the file
they came from; and held-out windows (images) of several lengths for a model of any, decoded
row by row and kept ragged (functions/runtime/batch/sizes.py) to be scored one run a length."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from functions.runtime.batch.jsonl import shape_text
from functions.runtime.batch.scoring import fits
from functions.runtime.batch.sizes import stacked
from functions.runtime.codecs import simple
from functions.runtime.errors import AiaasError, BadRequest
from functions.runtime.manifest import ModelManifest


def each_size(
    rows: list[dict[str, Any]], manifest: ModelManifest, path: Path, lines: list[int]
) -> dict[str, Any]:
    """Held-out windows of several lengths (images of several sizes) for a model of any: each
    row decoded alone, kept ragged and scored one run a size (batch/sizes.py), as `aiaas
    batch` and `compare` read the same JSONL. They were refused as ragged and told to pad the
    shorter windows, which moves a GRU's answers."""
    spec = manifest.inputs[0]
    decoded = []
    for row, line in zip(rows, lines, strict=True):
        try:
            decoded.append(simple.decode({"instances": [row]}, manifest)[spec.name][0])
        except AiaasError as exc:
            said = at_lines(exc.public_message, [line])
            said = said if said.startswith(f"line {line}") else f"line {line}: {said}"
            raise BadRequest(f"--data {path}: {said}") from None
        if not fits(spec.shape[1:], decoded[-1].shape):  # as batch says it of a JSONL line
            raise BadRequest(
                f"--data {path}: line {line}: input '{spec.name}' must have shape "
                f"{shape_text(spec.shape[1:])} per row; got {list(decoded[-1].shape)}"
            )
    return {spec.name: stacked(decoded)}


# A value's place in the rows sent: `input 'x' at index [2, 4, 11]`, `input 'x' value [0, 1, 11]`.
_PLACE = re.compile(r"\A(input '[^']*'(?: has [^\[]*?)? (?:at index|value) )\[(\d+), ")


def at_lines(message: str, lines: list[int]) -> str:
    """`message` with `instances[i].f` as `line N: f`, `instances[i]` as `line N`; a value of
    row i at `[i, 4, 11]` as `line N: ... [4, 11]`. A window's null said `at index [2, 4, 11]`,
    and one among windows of several lengths (decoded alone) `[0, 4, 11]`: the first line's."""

    def line(match: re.Match[str]) -> str:
        index = int(match.group(1))
        where = f"line {lines[index]}" if index < len(lines) else match.group(0)
        return f"{where}: " if match.group(2) else where

    said = re.sub(r"\binstances\[(\d+)\](\.)?", line, message)
    place = _PLACE.match(said)
    if place is None or int(place.group(2)) >= len(lines):
        return said
    return f"line {lines[int(place.group(2))]}: {place.group(1)}[{said[place.end() :]}"
