"""Merging shard parts into the final output: the same bytes a single run writes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

from functions.runtime.batch.formats import open_format
from functions.runtime.batch.npy import (
    COPY_BLOCK,
    ArrayBody,
    NpyHeader,
    npz_row_shapes,
    read_npy_header,
    write_npz,
)
from functions.runtime.batch.records import RunSummary, ShardPart
from functions.runtime.batch.row_axis import UnsupportedModel
from functions.runtime.batch.run import RunInput, publishing
from functions.runtime.batch.scoring import output_fields
from functions.runtime.batch.source import MAX_LINE_BYTES, open_range
from functions.runtime.errors import AiaasError
from functions.runtime.registry import Registry
from functions.runtime.store import ObjectStore
from functions.runtime.text_input import batch_view


def part_prefix(item: Mapping[str, Any]) -> str:
    """Where shard `item["index"]` of a run keeps its parts."""
    return f"{item['work']}/part-{item['index']:05d}"


def write_merged(
    store: ObjectStore,
    run: RunInput,
    plan: Mapping[str, Any],
    parts: list[ShardPart],
    marker: RunSummary,
    finish: Callable[[], RunSummary],
    max_line_bytes: int = MAX_LINE_BYTES,
) -> RunSummary:
    """Publish output and errors from the parts of `plan` (in shard order) and the summary
    `finish` makes, in the commit order of a single run (`run.publishing`)."""
    prefixes = [part_prefix({**plan, "index": i}) for i in range(len(parts))]
    manifest = Registry(store).manifest(run.obj.model, str(plan["version"]))
    fields = output_fields(manifest)
    # As the shards read the file: a text model's token input is its text column there.
    fmt = open_format(store, run.obj, batch_view(manifest), max_line_bytes)
    with publishing(store, run, marker) as publication:
        out, errors = publication.out, publication.errors
        if fmt.text:
            out.write(fmt.output_head(fields))
            for prefix in prefixes:
                with store.open_read(f"{prefix}.body") as body:
                    shutil.copyfileobj(body, out, COPY_BLOCK)
        else:
            write_npz(
                out, [_merged_array(store, f.name, i, prefixes) for i, f in enumerate(fields)]
            )
        _merge_errors(store, prefixes, parts, errors, fmt.position_key)
        publication.finish = finish
    return publication.final()


def _merge_errors(
    store: ObjectStore, prefixes: list[str], parts: list[ShardPart], out: IO[bytes], key: str
) -> None:
    """Concatenate the parts' errors; text shards number lines from 1, so shift them."""
    offset = 0
    for prefix, part in zip(prefixes, parts, strict=True):
        with store.open_read(f"{prefix}.errors.jsonl") as source:
            for line in _lines(source):
                record = json.loads(line)
                position = record[key] + (offset if key == "line" else 0)
                out.write((json.dumps({key: position, "error": record["error"]}) + "\n").encode())
        offset += int(part["lines"])


def _lines(source: IO[bytes]) -> Iterator[bytes]:
    """The lines of `source`, read a block at a time: an S3 body iterates in 1 KiB pieces,
    not lines (a file does)."""
    pending = b""
    while block := source.read(COPY_BLOCK):
        lines = (pending + block).split(b"\n")
        pending = lines.pop()
        yield from filter(None, lines)
    if pending:
        yield pending


def _merged_array(store: ObjectStore, name: str, index: int, prefixes: list[str]) -> ArrayBody:
    keys = [f"{prefix}/{index}.npy" for prefix in prefixes]
    headers = [read_npy_header(store, key) for key in keys]
    shaped = [h for h in headers if h.rows] or headers
    first = shaped[0]
    for header in shaped:
        if header.dtype == first.dtype and header.shape[1:] != first.shape[1:]:
            where = "in another shard of the file"  # a detector's K: npy.steady_rows
            raise UnsupportedModel(npz_row_shapes(name, first.shape[1:], header.shape[1:], where))
        if header.dtype != first.dtype:
            raise AiaasError(
                f"shard parts of array '{name}' disagree: {first.dtype}{list(first.shape[1:])} "
                f"vs {header.dtype}{list(header.shape[1:])}"
            )
    rows = sum(h.rows for h in headers)
    return ArrayBody(
        name, first.dtype, tuple(first.shape[1:]), rows, _parts_copier(store, keys, headers)
    )


def _parts_copier(
    store: ObjectStore, keys: list[str], headers: list[NpyHeader]
) -> Callable[[IO[bytes]], None]:
    def copy(out: IO[bytes]) -> None:
        for key, header in zip(keys, headers, strict=True):
            if header.rows:
                with open_range(store, key, header.offset) as source:
                    shutil.copyfileobj(source, out, COPY_BLOCK)

    return copy
