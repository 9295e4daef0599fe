"""Scoring one input object, or one shard of it: read, score and write a chunk at a time.

Parsing and formatting hold the GIL; onnxruntime and file or socket writes do not. So a chunk is
scored on one thread and the previous one's bytes are written on another while the next chunk
is parsed: on two or more cores the parsing thread sets the pace, not the sum of the three.
Memory is bounded by a few chunks, whatever the size of the object.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise
from typing import IO, Any

import numpy as np

from functions.runtime.batch.formats import BatchFormat, Reading, open_format
from functions.runtime.batch.handoffs import quick_handoffs
from functions.runtime.batch.layout import BatchObject
from functions.runtime.batch.npy import ArraySink
from functions.runtime.batch.scoring import Chunk, ChunkScorer, OutputField, RowError
from functions.runtime.batch.source import MAX_LINE_BYTES, ByteRange
from functions.runtime.errors import BadRequest
from functions.runtime.model import LoadedModel
from functions.runtime.store import ObjectInfo, ObjectStore

WRITES_QUEUED = 2  # formatted chunks waiting for the writer thread
# A run's progress: told (rows, what they read of the span: bytes for text, rows for NPY) of
# each chunk or worker block once scored.
Told = Callable[[int, int], None]


class EmptyInput(BadRequest):
    """A zero-byte input: nothing in it can be read."""


@dataclass
class Job:
    """An input object opened for scoring with one model version."""

    store: ObjectStore
    obj: BatchObject
    info: ObjectInfo
    model: LoadedModel
    chunk_rows: int
    format: BatchFormat
    scorer: ChunkScorer
    max_line_bytes: int = MAX_LINE_BYTES
    progress: Told | None = None

    def __post_init__(self) -> None:
        self.fields: list[OutputField] = self.scorer.fields()


def open_job(
    store: ObjectStore,
    model: LoadedModel,
    obj: BatchObject,
    info: ObjectInfo,
    chunk_rows: int,
    max_line_bytes: int = MAX_LINE_BYTES,
    progress: Told | None = None,
) -> Job:
    """Check the input against the model (format, header, shape); raises what makes it fail."""
    if info.size == 0:
        raise EmptyInput(f"{obj.input_key} is empty; nothing to score")
    scorer = ChunkScorer(model)  # checks the model's input shapes before the input is read
    fmt = open_format(store, obj, scorer.manifest, max_line_bytes)
    return Job(store, obj, info, model, chunk_rows, fmt, scorer, max_line_bytes, progress)


TIMINGS = ("read_s", "score_s", "write_s")


@dataclass
class SpanResult:
    """What scoring one span produced."""

    rows: int = 0
    scored: int = 0
    failed: int = 0
    lines: int = 0  # physical lines (text) or rows (NPY) the span covered
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(TIMINGS, 0.0))

    def counts(self) -> dict[str, Any]:
        """As JSON: what a shard's part summary and a worker's answer carry."""
        fields = ("rows", "scored", "failed", "lines")
        return {name: getattr(self, name) for name in fields} | {"timings": self.timings}

    def add(self, counts: Mapping[str, Any]) -> None:
        """Add another span's `counts()` (shards and worker blocks are summed)."""
        self.rows += counts["rows"]
        self.scored += counts["scored"]
        self.failed += counts["failed"]
        self.lines += counts["lines"]
        for key, value in counts["timings"].items():
            self.timings[key] = self.timings.get(key, 0.0) + value


def _reading(job: Job) -> Reading:
    manifest = job.scorer.manifest
    return Reading(job.store, job.obj.input_key, manifest, job.chunk_rows, job.max_line_bytes)


def span_chunks(job: Job, span: ByteRange) -> Iterator[Chunk]:
    """The chunks of a span: bytes [start, end) for text, rows [start, end) for NPY."""
    return job.format.chunks(_reading(job), span)


def span_edges(job: Job, span: ByteRange, cuts: Iterable[int]) -> Iterator[int]:
    """The edges of `span` cut at the ascending `cuts`, each inner one moved to where a record
    starts (a CSV record may span lines): from `span.start` to its end, read as they are needed.
    A span that starts the input ends no earlier than the chunk the model is judged on: cut
    inside it, a first shard or worker block of rows all refused failed the run, where one
    process scored the rows after them in that chunk."""
    end = job.format.extent(job.info) if span.end is None else span.end
    if span.start == 0:
        cuts = _not_before(cuts, lambda: job.format.judged_end(_reading(job)))
    yield span.start
    for edge in job.format.record_edges(_reading(job), span.start, cuts):
        yield min(edge, end)
    yield end


def _not_before(cuts: Iterable[int], least: Callable[[], int]) -> Iterator[int]:
    """The ascending `cuts`, none before `least()`, which is asked only if there is a cut."""
    floor: int | None = None
    for cut in cuts:
        floor = least() if floor is None else floor
        yield max(cut, floor)


def even_spans(job: Job, count: int) -> list[tuple[int, int]]:
    """`count` contiguous spans covering the input, about even, each starting at a record (a
    CSV record may span lines; a span may be empty then), the first holding the input's first
    chunk whole (`span_edges`)."""
    total = job.format.extent(job.info)
    cuts = [total * i // count for i in range(1, count)]
    return list(pairwise(span_edges(job, ByteRange(), cuts)))


def span_blocks(job: Job, span: ByteRange, size: int) -> Iterator[tuple[int, int]]:
    """A text span cut into blocks of about `size` bytes that start at records, none empty."""
    end = job.info.size if span.end is None else span.end
    edges = span_edges(job, span, range(span.start + size, end, size))
    return ((start, stop) for start, stop in pairwise(edges) if stop > start)


def score_span(
    job: Job, span: ByteRange, target: IO[bytes] | ArraySink, errors: IO[bytes]
) -> SpanResult:
    """Score one span into `target` (a text body or an array sink), errors into `errors`, in
    this process (`parallel.WorkerPool.score_span` is the same on worker processes)."""
    result = SpanResult()
    error_key = job.format.position_key
    if span.start > 0:  # the span that starts the input judges the model, on its first chunk
        job.scorer.proven = True  # (a shard or worker block of refused rows is rows refused)

    def score(chunk: Chunk) -> dict[str, np.ndarray]:
        began = time.perf_counter()
        outputs = job.scorer.score_chunk(chunk)  # may move rows the model fails to the errors
        result.timings["score_s"] += time.perf_counter() - began
        return outputs

    def emit(chunk: Chunk, scored: Future[dict[str, np.ndarray]]) -> Future[None]:
        outputs = scored.result()
        began = time.perf_counter()
        body = b""
        if not isinstance(target, ArraySink) and chunk.records:
            body = job.format.body(chunk, outputs, job.fields)
        failed = error_lines(chunk.errors, error_key) if chunk.errors else b""
        result.timings["write_s"] += time.perf_counter() - began
        result.rows += chunk.rows + len(chunk.errors)
        result.scored += chunk.rows
        result.failed += len(chunk.errors)
        result.lines += chunk.lines
        if job.progress is not None:
            job.progress(chunk.rows + len(chunk.errors), chunk.size)
        return writer.submit(write, chunk, outputs, body, failed)

    def write(chunk: Chunk, outputs: dict[str, np.ndarray], body: bytes, failed: bytes) -> None:
        began = time.perf_counter()
        if isinstance(target, ArraySink):
            target.write(chunk, outputs)
        elif body:
            target.write(body)
        if failed:
            errors.write(failed)
        result.timings["write_s"] += time.perf_counter() - began

    with (
        quick_handoffs(),  # the scorer takes the GIL for moments: not 5 ms late each time
        ThreadPoolExecutor(1, thread_name_prefix="aiaas-score") as scorer,
        ThreadPoolExecutor(1, thread_name_prefix="aiaas-write") as writer,
    ):
        pending: tuple[Chunk, Future[dict[str, np.ndarray]]] | None = None
        written: list[Future[None]] = []
        for chunk in _timed(span_chunks(job, span), result.timings):
            submitted = scorer.submit(score, chunk)
            if pending is not None:
                written.append(emit(*pending))
            pending = (chunk, submitted)
            while len(written) > WRITES_QUEUED:  # memory stays bounded by a few chunks
                written.pop(0).result()
        if pending is not None:
            written.append(emit(*pending))
        for future in written:
            future.result()  # raises what a write raised
    return result


def _timed(chunks: Iterator[Chunk], timings: dict[str, float]) -> Iterator[Chunk]:
    while True:
        began = time.perf_counter()
        chunk = next(chunks, None)
        timings["read_s"] += time.perf_counter() - began
        if chunk is None:
            return
        yield chunk


def shift_error_lines(data: bytes, key: str, offset: int) -> bytes:
    """Error JSON lines with `offset` added to each position: a span's lines count from 1."""
    if not offset:
        return data
    shifted = []
    for line in data.splitlines():
        record = json.loads(line)
        shifted.append(json.dumps({key: record[key] + offset, "error": record["error"]}) + "\n")
    return "".join(shifted).encode()


def error_lines(errors: list[RowError], key: str, offset: int = 0) -> bytes:
    """Error records as JSON lines: `{"line": n, "error": reason}` (`row` for NPY)."""
    return "".join(
        json.dumps({key: e.position + offset, "error": e.reason}) + "\n" for e in errors
    ).encode()


class Pieces:
    """A write target that keeps what it is given: a worker's answer is sent piece by piece,
    not copied into one buffer first."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self.pieces.append(data)
        self.size += len(data)
        return len(data)
