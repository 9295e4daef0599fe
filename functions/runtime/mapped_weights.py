"""Serve a big single-file model with its weights memory-mapped from the verified file.

onnxruntime parses a single-file model's protobuf (every weight read into memory) and then
copies the weights into its own tensors: ~2x the model's bytes at peak. Weights in external
data it memory-maps instead (~1x). So, for a big single file, a small graph file is written
beside it in which each large initializer's `raw_data` becomes an external data reference to
the byte range that raw_data already occupies *inside the original file*: no weight byte is
copied, and onnxruntime loads the graph file and maps the weights from the verified file.

The graph file is derived for one load and deleted once the session exists (onnxruntime has
mapped or read what it needs): never stale, never shared between processes, and it names only
the file it was derived from, at ranges read from that file's own fields. Anything unexpected
in the protobuf (an initializer already external, data both raw and typed, a field running past
its message) means the model loads as it always did, with a log line saying why.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from functions.runtime.packed_weights import Packing
from functions.runtime.protowire import (
    LEN,
    VARINT,
    Buffer,
    Field,
    encode_bytes,
    encode_key,
    encode_varint,
    fields,
)

if TYPE_CHECKING:
    import onnxruntime as ort

log = logging.getLogger("aiaas.runtime")

# Field numbers from onnx.proto (tests check them against onnx's own descriptors).
MODEL_GRAPH, GRAPH_NODE, GRAPH_INITIALIZER = 7, 1, 5
TENSOR_SEGMENT, TENSOR_RAW_DATA = 3, 9
TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION, EXTERNAL = 13, 14, 1
TYPED_DATA = frozenset({4, 5, 6, 7, 10, 11})  # float_data, int32, string, int64, double, uint64
ENTRY_KEY, ENTRY_VALUE = 1, 2

MIN_FILE_BYTES = 64 * 1024 * 1024  # below this the copies cost little: load the file as is
MIN_TENSOR_BYTES = 4096  # smaller initializers stay inside the graph file
COPY_CHUNK = 1024 * 1024
MAPPED, SMALL, TYPED = "mapped", "small", "typed"  # how an initializer loads (_kind)

Piece = bytes | tuple[int, int]  # new bytes, or a range of the original file copied verbatim


@dataclass(frozen=True)
class WeightLayout:
    """Where a single model file's bytes go when serving loads it (`loadable`): `mapped`, the
    initializers' raw_data onnxruntime maps from the file; the rest it copies, of which `nodes`
    (Constant tensors and other attributes), `typed` (initializers in float_data and the other
    typed fields) and `small` (initializers under MIN_TENSOR_BYTES) hold the weights. `packed`:
    the largest mapped weight onnxruntime packs (packed_weights.py), held twice at the peak;
    `padding`, counted in any file, what the packed copies add (a narrow MatMul's B: 16/N)."""

    size: int
    mapped: int = 0
    nodes: int = 0
    typed: int = 0
    small: int = 0
    whole: str = ""  # why the whole file is loaded (nothing mapped), if it is
    packed: int = 0
    padding: int = 0  # what onnxruntime's packed copies add past the weights (packed_weights.py)

    @property
    def copied(self) -> int:
        return self.size - self.mapped


class UnexpectedModel(ValueError):
    """The protobuf holds something the graph file does not handle: load the model as is."""


class AlreadyExternal(UnexpectedModel):
    """The model keeps its weights in external data files, which onnxruntime maps itself."""


@contextlib.contextmanager
def loadable(path: Path) -> Iterator[Path]:
    """The path to give onnxruntime for the model at `path`: while the block runs, a graph file
    mapping its weights from `path`, or `path` itself (small, unexpected, or no room)."""
    try:
        big = path.stat().st_size >= MIN_FILE_BYTES
    except OSError:  # onnxruntime's own error says what is wrong with the path
        big = False
    graph = graph_file(path) if big else None
    try:
        yield graph or path
    finally:
        if graph is not None:
            graph.unlink(missing_ok=True)


def inference_session(
    path: Path, graph: Path, options: ort.SessionOptions | None
) -> ort.InferenceSession:
    """onnxruntime's session of `graph` (from `loadable(path)`), or of `path` itself should
    onnxruntime refuse the graph file; its errors loading `path` are the caller's."""
    import onnxruntime as ort  # here: model_fit reads this module's sizes without onnxruntime

    cpu = ["CPUExecutionProvider"]
    if graph != path:
        try:
            return ort.InferenceSession(str(graph), sess_options=options, providers=cpu)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            log.warning("%s: loading the whole file (its mapped graph failed: %s)", path, exc)
    return ort.InferenceSession(str(path), sess_options=options, providers=cpu)


def graph_file(path: Path) -> Path | None:
    """A new graph file beside `path` mapping its large initializers from it (the caller
    deletes it), or None with a log line saying why the whole file must be loaded."""
    try:
        # Beside the model: onnxruntime resolves external data relative to the graph file's
        # folder and refuses locations outside it.
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=".graph-", suffix=".onnx")
    except OSError as exc:
        log.warning("%s: loading the whole file (no room for its graph file: %s)", path, exc)
        return None
    graph = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            mapped = write_graph(path, out)
    except AlreadyExternal:  # nothing to do: the usual form of a big model, no warning
        graph.unlink(missing_ok=True)
        return None
    except (ValueError, IndexError, OSError) as exc:  # UnexpectedModel is a ValueError
        graph.unlink(missing_ok=True)
        log.warning("%s: loading the whole file (its weights cannot be mapped: %s)", path, exc)
        return None
    except BaseException:  # an interrupt mid-write: leave no graph file in the cache
        graph.unlink(missing_ok=True)
        raise
    if not mapped:
        graph.unlink(missing_ok=True)
        return None
    return graph


def write_graph(source: Path, out: BinaryIO) -> int:
    """Write to `out` the model at `source` with each large initializer's raw_data referring to
    its bytes in `source`; the number of initializers so mapped (0: `out` is of no use)."""
    with source.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        pieces, mapped = _model(buf, source.name)
        if mapped:
            for piece in pieces:
                if isinstance(piece, bytes):
                    out.write(piece)
                else:  # a verbatim range: in bounded chunks (a big Constant node, say)
                    for at in range(piece[0], piece[1], COPY_CHUNK):
                        out.write(buf[at : min(at + COPY_CHUNK, piece[1])])
    return mapped


def weight_layout(buf: Buffer, *, external: bool = False) -> WeightLayout:
    """What `loadable` maps of the model in `buf` and what onnxruntime copies, counted from
    the fields' headers: no weight is read. `external`: `buf` is the model file of a model
    keeping its weights in external data files (mapped whole): only `packed` is counted. A file
    under MIN_FILE_BYTES is loaded whole: only its `padding`."""
    size = len(buf)
    small = f"under {MIN_FILE_BYTES // 2**20} MB" if size < MIN_FILE_BYTES and not external else ""
    counts = dict.fromkeys((MAPPED, SMALL, TYPED, "nodes"), 0)
    packing = Packing()
    try:
        for item in fields(buf, 0, size):
            if item.number == MODEL_GRAPH and item.wire == LEN:
                _count(buf, item, counts, packing, external)
    except AlreadyExternal:
        return WeightLayout(size, whole=small or "its weights are in external data files")
    except (ValueError, IndexError) as exc:  # graph_file would log it and load the whole file
        return WeightLayout(size, whole=small or f"its weights cannot be mapped: {exc}")
    padding = packing.padding()
    if small:  # loaded whole: only what its packed copies add counts
        return WeightLayout(size, whole=small, padding=padding)
    if external:
        whole = "its weights are in external data files"
        return WeightLayout(size, whole=whole, packed=packing.largest(), padding=padding)
    parts = (counts["nodes"], counts[TYPED], counts[SMALL])
    if not counts[MAPPED]:
        whole = "no initializer holds its weights as raw_data"
        return WeightLayout(size, 0, *parts, whole=whole, padding=padding)
    return WeightLayout(size, counts[MAPPED], *parts, packed=packing.largest(), padding=padding)


def _count(
    buf: Buffer, graph: Field, counts: dict[str, int], packing: Packing, external: bool
) -> None:
    for item in fields(buf, graph.start, graph.end):
        if item.number == GRAPH_INITIALIZER and item.wire == LEN:
            items = list(fields(buf, item.start, item.end))
            packing.initializer(buf, items)
            if external:
                packing.external(buf, items)
                continue
            kind = _kind(items)
            if kind == MAPPED:
                raw = next(i.end - i.start for i in items if i.number == TENSOR_RAW_DATA)
                counts[kind] += raw
                packing.mapped(buf, items, raw)
            else:
                counts[kind] += item.end - item.begin
        elif item.number == GRAPH_NODE and item.wire == LEN:
            counts["nodes"] += item.end - item.begin
            packing.node(buf, item, external)


def _model(buf: Buffer, location: str) -> tuple[list[Piece], int]:
    pieces: list[Piece] = []
    mapped = 0
    for item in fields(buf, 0, len(buf)):
        if item.number == MODEL_GRAPH and item.wire == LEN:
            graph, count = _graph(buf, item.start, item.end, location)
            size = sum(len(p) if isinstance(p, bytes) else p[1] - p[0] for p in graph)
            pieces += [encode_key(MODEL_GRAPH, LEN) + encode_varint(size), *graph]
            mapped += count
        else:
            pieces.append((item.begin, item.end))
    return pieces, mapped


def _graph(buf: Buffer, start: int, end: int, location: str) -> tuple[list[Piece], int]:
    pieces: list[Piece] = []
    mapped = 0
    for item in fields(buf, start, end):
        tensor = None
        if item.number == GRAPH_INITIALIZER and item.wire == LEN:
            tensor = _tensor(buf, item.start, item.end, location)
        if tensor is None:
            pieces.append((item.begin, item.end))
        else:
            pieces.append(encode_bytes(GRAPH_INITIALIZER, tensor))
            mapped += 1
    return pieces, mapped


def _tensor(buf: Buffer, start: int, end: int, location: str) -> bytes | None:
    """The initializer with its raw_data referred to where it lies in the file, or None to keep
    it as it is (small, or its data is in typed fields)."""
    items = list(fields(buf, start, end))
    if _kind(items) != MAPPED:
        return None
    raw = next(item for item in items if item.number == TENSOR_RAW_DATA)
    offset, length = raw.start, raw.end - raw.start
    if not 0 <= offset <= offset + length <= len(buf):  # fields() bounds it; never outside
        raise UnexpectedModel(f"raw_data at {offset}+{length} lies outside the file")
    kept = b"".join(
        bytes(buf[item.begin : item.end])
        for item in items
        if item.number not in (TENSOR_RAW_DATA, TENSOR_DATA_LOCATION)
    )
    entries = (("location", location), ("offset", str(offset)), ("length", str(length)))
    for key, value in entries:
        entry = encode_bytes(ENTRY_KEY, key.encode()) + encode_bytes(ENTRY_VALUE, value.encode())
        kept += encode_bytes(TENSOR_EXTERNAL_DATA, entry)
    return kept + encode_key(TENSOR_DATA_LOCATION, VARINT) + bytes([EXTERNAL])


def _kind(items: list[Field]) -> str:
    """How an initializer (its fields) loads: MAPPED, SMALL or TYPED (onnxruntime copies
    both); AlreadyExternal when the model keeps weights in external data files."""
    numbers = {item.number for item in items}
    if TENSOR_EXTERNAL_DATA in numbers or _external(items):
        raise AlreadyExternal("an initializer already keeps its data in an external file")
    raw = [item for item in items if item.number == TENSOR_RAW_DATA and item.wire == LEN]
    if numbers & TYPED_DATA or TENSOR_SEGMENT in numbers or len(raw) > 1:
        return TYPED  # onnxruntime decides what such a tensor means: leave it to it
    if not raw or raw[0].end - raw[0].start < MIN_TENSOR_BYTES:
        return SMALL
    return MAPPED


def _external(items: list[Field]) -> bool:
    return any(
        item.number == TENSOR_DATA_LOCATION and item.wire == VARINT and item.start == EXTERNAL
        for item in items
    )
