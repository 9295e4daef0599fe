"""`aiaas explain --file`: every row of a file explained, JSONL out in the file's order.

Rows go to the explain data plane in requests of at most MAX_ROWS; images of several sizes
(a JSONL file for a model of any image size) one size a request, grouped as batch scoring
groups them (batch/sizes.py), and their lines written back in the file's order.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

from functions.runtime.batch.sizes import is_ragged, size_groups
from functions.runtime.column_names import by_input
from functions.runtime.errors import InvalidInput, NonFiniteAnswer
from functions.runtime.explain.explainer import MAX_ROWS, OverBudget, explained_columns
from functions.runtime.image_layout import any_size_layout
from functions.runtime.manifest import ModelManifest
from infra.cli.output_file import output_file
from infra.cli.row_progress import Progress

# A row over the time limit alone (a request of several is halved first): the ways out that
# this command takes, for the data plane's "send fewer rows or ask for fewer samples".
ALONE_OVER = (
    "sent alone, this row does not fit; a lower --samples N (fewer coalitions a row: faster, "
    "less exact) or a higher AIAAS_EXPLAIN_MAX_SECONDS (seconds, in this command's environment) "
    "lets it through"
)


@dataclass
class FileRows:
    """The readable rows of a file in its order (an array, ragged when image sizes differ),
    {row: why} for the others, each row's line number where the format has lines (JSONL), and
    each row's own fields that are not model inputs (an id, a ground truth), to join on."""

    rows: np.ndarray
    bad: dict[int, str] = field(default_factory=dict)
    lines: list[int] | None = None
    records: list[dict[str, Any]] | None = None

    @property
    def total(self) -> int:
        return len(self.rows) + len(self.bad)

    def groups(self, limit: int) -> list[tuple[list[int], np.ndarray]]:
        """(file rows, their rows) of at most `limit` rows each, in file order within a group;
        rows of different shapes (images of any size) never share a group."""
        good = [i for i in range(self.total) if i not in self.bad]
        parts = []
        for indices in size_groups({"rows": self.rows}, len(self.rows)):
            for start in range(0, len(indices), limit):
                some = indices[start : start + limit]
                block = self.rows[some]
                parts.append(([good[i] for i in some.tolist()], _stacked(block)))
        return parts


def answered_elsewhere(rows: FileRows, manifest: ModelManifest, path: Path) -> str | None:
    """A line when `rows` come from a capture export (`request_id` and `version` beside the
    inputs) and some were answered by another version than the one explaining them: a user
    explaining "a surprising answer" got another model's reasons, without a word, once the alias
    had moved on (hunt_journey3 2). None otherwise."""
    name, version = manifest.name, manifest.version
    answered = [r.get("version") for r in rows.records or [] if "request_id" in r]
    others = Counter(
        named
        for value in answered
        if (named := _version_named(value)) is not None and not _same(value, named, version)
    )
    if not others:
        return None
    counted = ", ".join(f"{v} ({n})" for v, n in sorted(others.items()))
    first = sorted(others)[0]
    return (
        f"{others.total()} of {rows.total} rows of {path.name} were answered by another version "
        f"than {name}:{version}, which explains them here (their `version`: {counted}); to "
        f"explain the answer a row got, explain it with the version that gave it: `aiaas explain "
        f"{name}:{first} --file FILE` (`aiaas capture export {name} --version {first}` writes "
        "that version's rows alone)"
    )


def _version_named(value: Any) -> str | None:
    """A record's `version` as the registry names versions (text), None where it names none.
    A capture export writes it as text; a DataFrame written back as JSONL makes it a number
    (`"version": 1`), or a float where the column had a gap (`1.0`): an integral number is
    the version of that number, as a digit version is; any other number is its text (1.1 may
    have been "1.10": said as another version rather than taken for this one)."""
    if value is None or value == "" or value != value:  # NaN: a gap
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else json.dumps(value)


def _same(value: Any, named: str, version: str) -> bool:
    """Whether a record's version (`named` as text) is `version`: the same text, or, for a
    number, the same number as a digit version (`1` for `01`: what the DataFrame made of it)."""
    if named == version:
        return True
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and version.isascii() and version.isdigit() and int(version) == value


def _stacked(block: np.ndarray) -> np.ndarray:
    return np.stack(list(block)) if is_ragged(block) else block


def own_fields(record: Mapping[str, Any], inputs: Collection[str]) -> dict[str, Any]:
    """The fields of an input record that are not model inputs (a CSV's extra cells, keyed
    None by csv, are not fields)."""
    return {k: v for k, v in record.items() if k is not None and k not in inputs}


def json_fields(line: bytes, inputs: Collection[str]) -> dict[str, Any]:
    """`own_fields` of a JSONL line's object (a DataFrame's column names read as batch reads
    them); {} for a bare value or a line that is not JSON."""
    text = line.strip().removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:  # NaN, Infinity, integers beyond 64 bits: read as batch reads them
            data = json.loads(text)
        except (ValueError, RecursionError):
            return {}
    return own_fields(by_input(data, inputs), inputs) if isinstance(data, dict) else {}


class InOrder:
    """Writes records in row order, holding those that come early (another size's group)."""

    def __init__(self, sink: IO[str], rows: FileRows) -> None:
        self.sink, self.lines, self.records = sink, rows.lines, rows.records
        self.held: dict[int, dict[str, Any]] = {}
        self.next = 0
        self.failed = 0

    def add(self, record: dict[str, Any]) -> None:
        self.held[record["row"]] = record
        self.failed += "error" in record
        while self.next in self.held:
            line = self.held.pop(self.next)
            head: dict[str, Any] = {"row": line.pop("row")}
            if self.lines is not None:  # the line an editor shows, as batch's error files
                head["line"] = self.lines[self.next]
            if self.records is not None and self.records[self.next]:
                # Nested: a ground-truth `label` must not pass for the explained one.
                head["record"] = self.records[self.next]
            self.sink.write(json.dumps({**head, **line}) + "\n")
            self.next += 1


def explain_file(
    plane: Any,
    manifest: ModelManifest,
    path: Path,
    rows: FileRows,
    parameters: dict[str, int],
    out: Path | None,
    text: bool,
    *,
    show: bool = True,
) -> int:
    """Every row of `rows` to JSONL, one line a row in the file's order; a row that cannot be
    explained (unreadable, refused) is a line with its `error`, and the rest still are. With
    `show`, a progress line on stderr counts the rows as each request answers."""
    what = f"{manifest.name}:{manifest.version} explain {path.name}"
    if out:  # whole or not at all: Ctrl-C or an error leaves no half-written file
        with output_file(out) as temp, temp.open("w") as sink:
            failed = _write(sink, plane, manifest, rows, parameters, text, what, show)
    else:
        failed = _write(sys.stdout, plane, manifest, rows, parameters, text, what, show)
    total = rows.total
    # Without --out the JSONL is stdout: the summary goes to stderr, out of its way.
    # The version: `NAME` is whatever its alias served at the start, said nowhere else.
    summary = f"explained {total - failed} of {total} rows of {path}"
    summary += f" with {manifest.name}:{manifest.version}" + (f" into {out}" if out else "")
    print(summary, file=sys.stdout if out else sys.stderr)
    if failed:
        print(f"{failed} row(s) could not be explained: see their 'error' lines", file=sys.stderr)
    return 1 if failed else 0


def _write(
    sink: IO[str],
    plane: Any,
    manifest: ModelManifest,
    rows: FileRows,
    parameters: dict[str, int],
    text: bool,
    what: str,
    show: bool,
) -> int:
    """The JSONL lines of `rows` to `sink`; how many rows failed."""
    order = InOrder(sink, rows)
    for row, error in sorted(rows.bad.items()):
        order.add({"row": row, "error": error})
    with Progress(what, rows.total, show=show) as shown:  # "done": a bad row is no explained one
        shown.add(len(rows.bad))
        for index, chunk in rows.groups(MAX_ROWS):
            for record in _explained(plane, manifest, chunk, index, parameters, text):
                order.add(record)
            shown.add(len(index))
    return order.failed


def _explained(
    plane: Any,
    manifest: ModelManifest,
    chunk: np.ndarray,
    index: list[int],
    parameters: dict[str, int],
    text: bool,
) -> list[dict[str, Any]]:
    """The records of `chunk` (file rows `index`). A refused chunk is halved until it fits the
    time budget (64 digits-MLP rows at 20,000 samples are over the default 10 s) and a row
    refused on its own is an error line, so one bad row or a slow model loses nothing else."""
    try:
        doc = _explain(plane, manifest, chunk, parameters, text)
    except (InvalidInput, NonFiniteAnswer) as exc:  # a row answered infinity: its own line
        if len(index) == 1:  # its request's row 0 is the file's row: said as the file's
            why = exc.reason + ALONE_OVER if isinstance(exc, OverBudget) else str(exc)
            said = re.sub(r"\b(row|image|window) 0\b", rf"\g<1> {index[0]}", why)
            return [{"row": index[0], "error": said}]
        half = len(index) // 2
        return _explained(plane, manifest, chunk[:half], index[:half], parameters, text) + (
            _explained(plane, manifest, chunk[half:], index[half:], parameters, text)
        )
    # Text rows carry their own tokens; tabular ones share the feature names.
    names = {} if text else {"features": doc["features"]}
    return [
        {"row": row, **names, "outputs": doc["outputs"], **entry}
        for row, entry in zip(index, doc["explanations"], strict=True)
    ]


def _bools(manifest: ModelManifest, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`arrays` with each bool input's 0/1 floats (a CSV's True/False cells, JSONL's
    true/false, as the rows are read) as bools: validation takes no float for a bool input,
    and every row of a bool-input model was refused "expects bool; got float64". Values other
    than 0 and 1 are left for validation to refuse."""
    for spec in manifest.inputs:
        value = arrays.get(spec.name)
        if spec.dtype == "bool" and value is not None and np.isin(value, (0.0, 1.0)).all():
            arrays[spec.name] = value.astype(bool)
    return arrays


def _explain(
    plane: Any, manifest: ModelManifest, chunk: np.ndarray, parameters: dict[str, int], text: bool
) -> dict[str, Any]:
    """The plane's simple JSON explanation of `chunk`. Numeric rows go to it as arrays: JSON
    has no infinity, and orjson wrote a file's inf cell as null, a missing value (a tree
    published with --allow-nonfinite was explained for NaN's branch, and a model that takes
    finite numbers only refused the row as "a missing value")."""
    if text or any_size_layout(manifest) is not None:  # texts, or images in their own shape
        inputs = {"inputs": chunk.tolist()}
    elif chunk.dtype.kind == "f":
        model = plane.models.model(manifest.name, manifest.version)
        arrays = _bools(manifest, explained_columns(manifest).arrays(chunk))
        # 1e39 for float32, a coalition answered infinity: the refusal says so, no warning
        with np.errstate(over="ignore", invalid="ignore"):
            return dict(plane.explain_arrays(model, arrays, **parameters))
    else:  # a string column among numbers: as the JSON a caller sends
        inputs = explained_columns(manifest).columns(chunk)
    body = orjson.dumps({**inputs, "parameters": parameters})
    return dict(plane.explain(manifest.name, manifest.version, body))
