"""NPY batch input (one array, rows = instances) and the .npz archive it is scored into.

The input is read a chunk of rows at a time straight from its bytes (never `allow_pickle`).
The output holds one array per field (each model output, plus `label` and `score` for
classifiers) with one row per input row, so row i of every array belongs to input row i;
rows that could not be scored are filled (NaN, 0, False or "") and listed in the errors file.
"""

from __future__ import annotations

import io
import math
import shutil
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from numpy.lib import format as npy_format

from functions.runtime.batch.row_axis import UnsupportedModel
from functions.runtime.batch.scoring import (
    Chunk,
    OutputField,
    RowError,
    coerce_rows,
    fits,
    row_shape,
)
from functions.runtime.dtypes import BY_NAME
from functions.runtime.errors import BadRequest
from functions.runtime.input_messages import channels_hint, grey_axis_missing
from functions.runtime.manifest import ModelManifest
from functions.runtime.store import ObjectStore

HEADER_READ = 64 * 1024
MAX_ARRAY_BYTES = 2**63 - 1  # a file's size is an int64: a header promising more is a lie
COPY_BLOCK = 4 * 1024 * 1024
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed: the same rows always make the same bytes


class BadArrayFile(BadRequest):
    """The NPY file cannot be read as rows for this model."""


@dataclass(frozen=True)
class NpyHeader:
    shape: tuple[int, ...]
    dtype: np.dtype[np.generic]
    offset: int  # where the data starts
    fortran: bool = False  # column-major: each element of a row is a column stored whole

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 0

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize


def parse_npy_header(head: bytes, where: str) -> NpyHeader:
    """The header at the start of an .npy file (`head` holds at least its first bytes)."""
    stream = io.BytesIO(head)
    try:
        version = npy_format.read_magic(stream)
        reader = (
            npy_format.read_array_header_1_0
            if version == (1, 0)
            else npy_format.read_array_header_2_0
        )
        shape, fortran, dtype = reader(stream)
    except ValueError as exc:
        raise BadArrayFile(f"{where}: not an .npy file numpy can read: {exc}") from None
    if dtype.hasobject:
        raise BadArrayFile(f"{where}: holds Python objects, which need pickle; save numbers")
    # numpy takes any tuple of ints: (-1, 4) was "scored 0 of 0 rows", a run that succeeded.
    if any(n < 0 for n in shape) or math.prod(shape) * dtype.itemsize > MAX_ARRAY_BYTES:
        raise BadArrayFile(
            f"{where}: its header gives shape {list(shape)}, "
            f"{'a negative size' if any(n < 0 for n in shape) else 'more bytes than a file holds'}"
            "; the file is broken: write it again with numpy.save"
        )
    # `np.save(df.to_numpy())` writes Fortran order: a one-dtype DataFrame's array is a view of
    # its column-major block. It was refused; it is read a column at a time (`fortran_rows`).
    return NpyHeader(tuple(shape), dtype, stream.tell(), fortran=bool(fortran and len(shape) > 1))


def read_npy_header(store: ObjectStore, key: str) -> NpyHeader:
    with store.open_read(key) as handle:
        return parse_npy_header(handle.read(HEADER_READ), key)


def check_length(header: NpyHeader, size: int, where: str) -> None:
    """A file shorter than the array its header promises was cut short (an upload or an
    `np.save` that stopped; numpy's own load refuses it): the whole run fails, as for a gzip
    stream or a Fortran-order array cut short. It was scored up to the cut and called done,
    the rows after it neither scored nor listed, the output's length set by the chunk size."""
    expected = header.offset + header.rows * header.row_bytes
    if size >= expected:  # bytes past the array are left, as numpy leaves them
        return
    whole = max(size - header.offset, 0) // header.row_bytes if header.row_bytes else 0
    held = (
        "a Fortran-order array cut short has no whole row"
        if header.fortran
        else f"{whole} whole rows of {header.rows}"
    )
    raise BadArrayFile(
        f"{where}: the file ends before the {list(header.shape)} array its header promises "
        f"({size} of {expected} bytes, {held}): it was cut short; upload the whole file"
    )


def check_rows(header: NpyHeader, manifest: ModelManifest, where: str) -> None:
    """The array must be a batch of rows of the model's single input."""
    if len(manifest.inputs) != 1:
        names = [spec.name for spec in manifest.inputs]
        raise UnsupportedModel(
            f"{where}: an .npy file feeds a single-input model; {manifest.name} has inputs "
            f"{names}: use CSV or JSONL"
        )
    spec = manifest.inputs[0]
    want = row_shape(manifest, spec, sized=False)  # an image model of any size: the file's own
    if spec.dtype == "string" and header.dtype.kind in "biuf":  # a text model's token ids
        raise BadArrayFile(
            f"{where}: an .npy of numbers for a model that reads text ('{spec.name}'): batch "
            "files of a text model hold its texts (a CSV column or JSONL field "
            f"'{spec.name}'), which it tokenizes itself; send the texts, or token ids to the "
            "predict API"
        )
    if len(header.shape) != len(want) + 1 or not fits(want, header.shape[1:]):
        raise BadArrayFile(
            f"{where}: array shape {list(header.shape)} does not fit input '{spec.name}' "
            f"{list(spec.shape)}; rows must have shape {list(want)}"
            + (
                _one_row_hint(want, header.shape)  # one [1, H, W] grey image: that alone
                or channels_hint((-1, *want), header.shape)
                + grey_axis_missing((-1, *want), header.shape)
            )
        )
    if header.dtype.kind not in "biuf" and not (
        spec.dtype == "string" and header.dtype.kind == "U"
    ):
        raise BadArrayFile(f"{where}: element type {header.dtype} cannot feed {spec.dtype}")
    _check_exact(header.dtype, spec.name, spec.dtype, where)


def _one_row_hint(want: tuple[int, ...], got: tuple[int, ...]) -> str:
    """A single row saved without its batch axis (`np.save('image.npy', image)` of one
    [3, 32, 32] image) is refused for the shape the message then asks for: say so."""
    if not fits(want, got):
        return ""
    return (
        f"; this array is one row without its batch axis: save it as an array of rows, "
        f"[1, {', '.join(map(str, got))}] (numpy: np.save(path, row[None]))"
    )


def _check_exact(dtype: np.dtype[np.generic], name: str, want: str, where: str) -> None:
    """As the predict API refuses a typed tensor of true/false for a number input (True was
    scored as 1.0). Integers are judged by value, row by row (`exact_casts.inexact_rows`): a
    row with one a float input has no exact value for is reported, the others scored."""
    target = BY_NAME[want].numpy if want in BY_NAME else None
    if target is not None and target.kind in "iuf" and dtype.kind == "b":
        raise BadArrayFile(
            f"{where}: input '{name}' expects {want}; got an array of bool (true/false "
            f"values), which the predict API refuses too: save the {want} values the model takes"
        )


RowReader = Callable[[int, int], np.ndarray]  # rows [first, first + count), fewer at the end


def c_rows(stream: IO[bytes], header: NpyHeader) -> RowReader:
    """Rows of a C-order array, read in turn from `stream` (positioned at the first)."""

    def read(first: int, count: int) -> np.ndarray:
        data = _read_exactly(stream, count * header.row_bytes)
        complete = len(data) // header.row_bytes if header.row_bytes else count
        width = int(np.prod(header.shape[1:], dtype=np.int64))
        values = np.frombuffer(data, dtype=header.dtype, count=complete * width)
        return values.reshape((complete, *header.shape[1:]))

    return read


def fortran_rows(store: ObjectStore, key: str, header: NpyHeader) -> RowReader:
    """Rows of a Fortran-order array: element c of every row (c counted in Fortran order over
    the row's shape) is stored as one run of `rows` values, so a chunk of rows is one ranged
    read per element (a CSV-like table of F columns: F reads of a chunk's rows each)."""
    width = int(np.prod(header.shape[1:], dtype=np.int64))
    size = header.dtype.itemsize

    def read(first: int, count: int) -> np.ndarray:
        columns = np.empty((width, count), dtype=header.dtype)
        for column in range(width):
            at = header.offset + (column * header.rows + first) * size
            with store.open_read(key, at, at + count * size) as stream:
                data = _read_exactly(stream, count * size)
            if len(data) < count * size:  # the last columns are cut: no row is whole
                raise BadArrayFile(
                    f"{key}: the file ends before the {list(header.shape)} array its header "
                    "promises; a Fortran-order array cut short has no whole row"
                )
            columns[column] = np.frombuffer(data, header.dtype)
        # (width, count) in C order is the rows' elements with the axes reversed.
        return np.ascontiguousarray(columns.reshape((*header.shape[1:][::-1], count)).T)

    return read


def npy_chunks(
    read: RowReader,
    header: NpyHeader,
    manifest: ModelManifest,
    start: int,
    end: int,
    chunk_rows: int,
) -> Iterator[Chunk]:
    """Chunks of rows [start, end), as `read` gives them."""
    spec = manifest.inputs[0]
    for first in range(start, end, chunk_rows):
        count = min(chunk_rows, end - first)
        values = read(first, count)
        complete = len(values)
        positions = np.arange(first, first + count, dtype=np.int64)
        present = positions[:complete]
        features, good, errors = coerce_rows(manifest, {spec.name: values}, present)
        if complete < count:  # the file is shorter than its header says
            errors.append(
                RowError(
                    first + complete, f"the file ends here; its header promises {header.rows} rows"
                )
            )
            good = np.concatenate([good, np.zeros(count - complete, dtype=bool)])
        kept = present[good[:complete]]  # each good row's index: rows the model fails are dropped
        yield Chunk(count, features, good, records=[], errors=errors, positions=kept, size=count)
        if complete < count:
            return


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    parts, left = [], size
    while left > 0:
        block = stream.read(left)
        if not block:
            break
        parts.append(block)
        left -= len(block)
    return b"".join(parts)


def fill_value(dtype: np.dtype[np.generic]) -> object:
    """What a row that was not scored holds."""
    return {"f": np.nan, "c": np.nan, "b": False, "U": ""}.get(dtype.kind, 0)


@dataclass
class ArrayBody:
    """One array of the output archive: its header facts and how to copy its row bytes."""

    name: str
    dtype: np.dtype[np.generic]
    row_shape: tuple[int, ...]
    rows: int
    copy_to: Callable[[IO[bytes]], None]


class ArraySink:
    """Collects each field's rows, input-aligned, in a local file per field."""

    def __init__(self, fields: list[OutputField], directory: Path, label_width: int) -> None:
        self.fields = fields
        self.label_width = max(1, label_width)
        self.paths = {f.name: directory / f"{i}.bin" for i, f in enumerate(fields)}
        self.files = {name: path.open("wb") for name, path in self.paths.items()}
        self.kinds: dict[str, tuple[np.dtype[np.generic], tuple[int, ...]]] = {}
        self.rows = 0
        self.pending = 0  # unscored rows seen before any row told us an output's shape

    def write(self, chunk: Chunk, outputs: dict[str, np.ndarray]) -> None:
        size = len(chunk.good)
        if outputs and not self.kinds:
            self.kinds = {f.name: self._kind(outputs[f.name]) for f in self.fields}
            for field in self.fields:
                self._fill(field.name, self.pending)
        if not self.kinds:
            self.pending += size
        else:
            for field in self.fields:
                dtype, shape = self.kinds[field.name]
                if outputs:
                    steady_rows(field.name, shape, outputs[field.name], self.rows)
                full = np.full((size, *shape), fill_value(dtype), dtype=dtype)
                if outputs:
                    full[chunk.good] = outputs[field.name]
                self.files[field.name].write(full.tobytes())
        self.rows += size

    def _kind(self, values: np.ndarray) -> tuple[np.dtype[np.generic], tuple[int, ...]]:
        dtype = np.dtype(f"<U{self.label_width}") if values.dtype.kind in "OU" else values.dtype
        return dtype, tuple(values.shape[1:])

    def _fill(self, name: str, count: int) -> None:
        dtype, shape = self.kinds[name]
        self.files[name].write(np.full((count, *shape), fill_value(dtype), dtype=dtype).tobytes())

    def bodies(self) -> list[ArrayBody]:
        """The finished arrays; call once, after the last chunk."""
        for handle in self.files.values():
            handle.close()
        result = []
        for field in self.fields:
            dtype, shape = self.kinds.get(
                field.name, (_declared(field, self.label_width), _zeros(field))
            )
            path = self.paths[field.name]
            if not self.kinds:  # nothing was scored: every row is a fill row
                with path.open("wb") as handle:
                    handle.write(
                        np.full((self.rows, *shape), fill_value(dtype), dtype=dtype).tobytes()
                    )
            result.append(ArrayBody(field.name, dtype, shape, self.rows, _file_copier(path)))
        return result


def steady_rows(name: str, shape: tuple[int, ...], values: np.ndarray, before: int) -> None:
    """UnsupportedModel when output `name` answers rows of another shape than the rows before
    (`shape`): an .npz holds one array per output, every row of one shape, streamed to its
    member as it comes and concatenated over shards. A dimension the model sizes by what it
    finds (a detector's boxes [N, K, 6], K the most found in a call) differs between chunks;
    it failed deep in numpy ("could not be broadcast") and the message went back to the queue.
    Padding K would write made-up boxes a reader cannot tell from found ones (np.load gives
    no count per row), and an object array needs pickle, which aiaas never writes."""
    got = tuple(values.shape[1:])
    if got != shape:
        raise UnsupportedModel(npz_row_shapes(name, shape, got, f"from row {before}"))


def npz_row_shapes(name: str, first: tuple[int, ...], other: tuple[int, ...], where: str) -> str:
    """Why an output whose rows change shape cannot be written to an .npz, and what works."""
    return (
        f"output '{name}' answers rows of shape {list(other)} {where} where earlier rows were "
        f"{list(first)}: the model sizes a dimension by the rows it is sent (a detector's "
        "boxes, say), and an .npz holds each output as one array of rows of one shape: score "
        "the rows as JSONL instead (a line per row, its values as a list: json.dumps(row.tolist())"
        "), which writes each row's answer whole on its own line"
    )


def _declared(field: OutputField, label_width: int) -> np.dtype[np.generic]:
    return np.dtype(f"<U{label_width}") if field.dtype == "string" else np.dtype(field.dtype)


def _zeros(field: OutputField) -> tuple[int, ...]:
    return tuple(0 if d == -1 else d for d in field.row_shape)


def _file_copier(path: Path) -> Callable[[IO[bytes]], None]:
    def copy(out: IO[bytes]) -> None:
        with path.open("rb") as source:
            shutil.copyfileobj(source, out, COPY_BLOCK)

    return copy


def npy_header_bytes(dtype: np.dtype[np.generic], shape: tuple[int, ...]) -> bytes:
    """The .npy header for an array of `dtype` and `shape` (C order)."""
    buffer = io.BytesIO()
    meta = {"descr": npy_format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    npy_format.write_array_header_1_0(buffer, meta)
    return buffer.getvalue()


def write_npz(out: IO[bytes], arrays: list[ArrayBody]) -> None:
    """An uncompressed .npz (np.load reads it) streamed member by member."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for array in arrays:
            info = zipfile.ZipInfo(f"{array.name}.npy", date_time=ZIP_TIME)
            with archive.open(info, "w", force_zip64=True) as member:
                member.write(npy_header_bytes(array.dtype, (array.rows, *array.row_shape)))
                array.copy_to(member)
