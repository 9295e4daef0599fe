"""The rows a comparison scores: a batch input file (CSV, JSONL, NPY, gzip too), read by the
batch readers, or a capture file, whose requests are decoded as the predict function decoded
them (so anything predict accepted can be compared).

A capture file is JSON lines, each `{"time", "request_id", "model", "version", "route":
"predict"|"infer", "request": <body>, "response": <body>}`; it is told from a plain JSONL batch
input by its first line (an object with `route` and a `request` object). Each request is one
batch of rows. A line that cannot be read is a bad row with its line number; the rest are read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO

import numpy as np
import orjson

from functions.runtime.batch.formats import CsvFormat, Reading, gunzipped, open_format
from functions.runtime.batch.layout import BatchObject
from functions.runtime.batch.scoring import Chunk, RowError
from functions.runtime.batch.source import HEADER_LIMIT, ByteRange, line_batches, read_first_line
from functions.runtime.codecs import oip, simple
from functions.runtime.comparison.truth import TruthReader, json_line, truth_reader
from functions.runtime.comparison.values import has_truth
from functions.runtime.errors import AiaasError, BadRequest
from functions.runtime.manifest import ModelManifest
from functions.runtime.store import ObjectStore
from functions.runtime.text_input import batch_view

CAPTURE = "capture"
ROUTES = ("predict", "infer")
CAPTURE_LINES = 256  # captured requests read at a time


@dataclass
class Batch:
    """Rows to score with both versions.

    File rows are already cast to the model's dtypes (`rows` of them, scored in batches); a
    captured request is scored whole, as predict did (`typed`: the OIP form, else simple JSON).
    """

    inputs: dict[str, np.ndarray]
    position: int  # its first line (text, capture) or row (NPY), for error records
    rows: int | None = None  # None for a captured request: its outputs tell
    typed: bool = True
    truth: list[object] | None = None  # ground truth per row, None where a row has none
    positions: np.ndarray | None = None  # file rows: each row's line (text) or row (NPY)

    def line(self, row: int) -> int:
        """The line (text, capture) or row (NPY) of the batch's row `row`, for error records."""
        return int(self.positions[row]) if self.positions is not None else self.position + row

    def select(self, rows: slice | np.ndarray) -> Batch:
        """File rows only: the batch of these of its rows (a slice, or a mask of its rows)."""
        assert self.rows is not None
        picked = np.arange(self.rows)[rows]
        inputs = {name: value[rows] for name, value in self.inputs.items()}
        truth = None if self.truth is None else [self.truth[i] for i in picked.tolist()]
        positions = None if self.positions is None else self.positions[rows]
        first = self.line(int(picked[0])) if len(picked) else self.position
        return Batch(inputs, first, len(picked), self.typed, truth, positions)


@dataclass
class CompareFile:
    """An opened file: its format, its batches (read lazily) and the bad rows found so far."""

    format: str
    position_key: str  # "line" or "row", as batch error records name them
    label: str | None  # the column or field read as ground truth, if any
    batches: Iterator[Batch]
    errors: list[RowError] = field(default_factory=list)


def open_compare_file(
    store: ObjectStore,
    key: str,
    manifest: ModelManifest,
    label: str | None,
    *,
    label_required: bool,
    chunk_rows: int,
    defaults: Sequence[str] = (),
    width: int = 1,
) -> CompareFile:
    """Open `key` for `manifest`'s inputs; raises what makes the whole file unreadable. With no
    `label`, the truth is the first of `defaults` the file has (CSV columns, JSONL fields of its
    first line), if any; for a truth of `width` values a row, its columns `y_0` ... too."""
    obj = BatchObject(model=manifest.name, input_key=key, file=key)
    if obj.format == "jsonl" and _is_capture(store, key, obj.compressed):
        opened = CompareFile(CAPTURE, "line", None, iter(()))
        opened.batches = _capture_batches(store, key, obj.compressed, manifest, opened.errors)
        return opened
    manifest = batch_view(manifest)  # a text model's files hold its text, as in batch
    read = {*manifest.features, *(spec.name for spec in manifest.inputs)}
    if label is not None and label in read:  # every row "a class neither version was trained
        raise BadRequest(  # on", accuracy 0 for both (the text field as --label)
            f"--label {label!r} is what the model reads, not a ground truth: name the column "
            "(or JSONL field) that holds each row's true answer"
        )
    fmt = open_format(store, obj, manifest)
    truth = None
    if fmt.name != "npy" and (label is not None or defaults):
        columns = fmt.layout.columns if isinstance(fmt, CsvFormat) else None
        if label is None:
            there = _first_fields(store, key, obj.compressed) if columns is None else columns
            label = next((name for name in defaults if has_truth(name, there, width)), None)
        if label is not None:
            truth = truth_reader(label, columns, key, required=label_required, width=width)
    elif label_required:
        raise BadRequest(f"{key}: an .npy file has no label column; compare without --label")
    found = CompareFile(fmt.name, fmt.position_key, None if truth is None else label, iter(()))
    chunks = fmt.chunks(Reading(store, key, manifest, chunk_rows), ByteRange())
    found.batches = _file_batches(chunks, truth, found.errors)
    return found


def _file_batches(
    chunks: Iterator[Chunk], truth: TruthReader | None, errors: list[RowError]
) -> Iterator[Batch]:
    position = 1
    for chunk in chunks:
        errors.extend(chunk.errors)
        if chunk.rows:
            values = None if truth is None else truth(chunk.records)
            yield Batch(chunk.features, position, chunk.rows, True, values, chunk.positions)
        position += chunk.lines


def _first_record(store: ObjectStore, key: str, compressed: bool) -> object:
    """The first line of a JSONL file as JSON (None if it is not)."""
    if compressed:
        with _opened(store, key, compressed) as stream:
            first = stream.readline(HEADER_LIMIT)
    else:
        first = read_first_line(store, key)
    return json_line(first.strip())


def _first_fields(store: ObjectStore, key: str, compressed: bool) -> list[str]:
    record = _first_record(store, key, compressed)
    return list(record) if isinstance(record, dict) else []


def _is_capture(store: ObjectStore, key: str, compressed: bool) -> bool:
    record = _first_record(store, key, compressed)
    return (
        isinstance(record, dict) and "route" in record and isinstance(record.get("request"), dict)
    )


@contextlib.contextmanager
def _opened(store: ObjectStore, key: str, compressed: bool) -> Iterator[IO[bytes]]:
    with store.open_read(key) as raw:
        if not compressed:
            yield raw
            return
        with gunzipped(raw, key) as stream:  # a decompression bomb refused, as in batch
            yield stream


def _capture_batches(
    store: ObjectStore, key: str, compressed: bool, manifest: ModelManifest, errors: list[RowError]
) -> Iterator[Batch]:
    # Lines as batch reads them: an S3 body iterates in 1 KiB pieces, not lines.
    with _opened(store, key, compressed) as stream:
        for first, lines in line_batches(stream, ByteRange(), CAPTURE_LINES):
            for number, line in enumerate(lines, first):
                if not line.strip():
                    continue
                try:
                    inputs, typed = decode_captured(line, manifest)
                except AiaasError as exc:
                    errors.append(RowError(number, exc.message))
                    continue
                yield Batch(inputs, number, None, typed)


def decode_captured(line: bytes, manifest: ModelManifest) -> tuple[dict[str, np.ndarray], bool]:
    """One capture line's request as the predict function decodes it: (inputs, typed)."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"not valid JSON: {exc}") from None
    request = record.get("request") if isinstance(record, dict) else None
    if not isinstance(request, dict):
        raise BadRequest('a capture line needs a "request" object')
    route = record.get("route", "predict")
    if route == "infer":
        return oip.decode_request(orjson.dumps(request), None, manifest).inputs, True
    if route == "predict":
        return simple.decode(request, manifest, fields=None), False
    raise BadRequest(f"route {route!r} is not one of {', '.join(ROUTES)}")
