"""Text inputs scored by worker processes: every vCPU parses, scores and formats.

Parsing and formatting text hold the GIL, so one process scores CSV or JSONL on about one core
whatever the function's size (Lambda gives a vCPU per 1,769 MB, up to 6). Here the span is cut
into blocks of about BLOCK_BYTES that start at records (`job.span_blocks`), and the worker
processes the caller asked for take them in turn. A worker reads its block from the store itself
(it owns the records that start in it) and scores it with the single-process code, so the output is byte for byte the same; the calling
process only writes the answers in order, on a writer thread, and shifts error line numbers.

Workers are plain subprocesses over pipes (Lambda has no /dev/shm, so no multiprocessing
queues) and stay up between invocations of a warm container. Messages are a kind byte and a
length, then raw bytes or JSON: no pickle. A worker that dies fails the run (the event is
retried) and the pool is started afresh on the next run.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import io
import json
import os
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from http import HTTPStatus
from pathlib import Path
from queue import SimpleQueue
from typing import IO, Any, cast

from functions.runtime.batch.job import (
    TIMINGS,
    Job,
    Pieces,
    SpanResult,
    open_job,
    score_span,
    shift_error_lines,
    span_blocks,
)
from functions.runtime.batch.layout import parse_input_key
from functions.runtime.batch.source import ByteRange
from functions.runtime.child_path import child_command, child_pythonpath
from functions.runtime.errors import AiaasError, BadRequest
from functions.runtime.manifest import ModelManifest
from functions.runtime.model import LoadedModel
from functions.runtime.store import ObjectInfo, open_store

IN_FLIGHT_PER_WORKER = 2  # blocks sent and not yet written, per worker: bounds memory

FRAME = struct.Struct("<BQ")  # kind, payload bytes
INIT, BLOCK, READY, DONE, FAILED, REFUSED = range(6)
COUNTS = struct.Struct("<QQQQQddd")  # body bytes, rows, scored, failed, lines, 3 timings
BOUNDS = struct.Struct("<QQ")  # a block: the byte range whose lines it scores
BLOCK_BYTES = 8 * 1024 * 1024
PIPE_BYTES = 1024 * 1024
F_SETPIPE_SZ = 1031  # Linux: bigger pipes, fewer context switches per block


class WorkerFailed(AiaasError):
    """A batch worker process died or could not score a block."""


# ---- the calling process ---------------------------------------------------------------------


Answer = tuple[memoryview, bytes, dict[str, Any]]  # output body, error lines, counts


class _Worker:
    """One worker process, with a thread that feeds it and one that reads its answers, so
    that no worker waits while the caller is busy with another."""

    def __init__(self) -> None:
        # Only the import path is set: what to score, and with how many onnxruntime threads,
        # comes in the INIT message.
        env = {**os.environ, "PYTHONPATH": child_pythonpath()}
        self.process = subprocess.Popen(
            child_command("functions.runtime.batch.parallel"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.requests, self.answers = self.process.stdin, self.process.stdout
        for pipe in (self.requests, self.answers):
            with contextlib.suppress(OSError):
                fcntl.fcntl(pipe.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
        self.outbox: SimpleQueue[tuple[int, bytes] | None] = SimpleQueue()
        self.waiting: deque[Future[Any]] = deque()
        self.gone: str | None = None  # why the worker answers no more, once it does not
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._write, name="aiaas-batch-feed", daemon=True),
            threading.Thread(target=self._read, name="aiaas-batch-answers", daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def send(self, kind: int, payload: bytes, future: Future[Any]) -> None:
        """Queue a message; `future` gets its answer, or the reason there is none."""
        with self.lock:
            if self.gone is not None:
                future.set_exception(WorkerFailed(self.gone))
                return
            self.waiting.append(future)
        self.outbox.put((kind, payload))

    def _write(self) -> None:
        try:
            while (message := self.outbox.get()) is not None:
                kind, payload = message
                self.requests.write(FRAME.pack(kind, len(payload)))
                self.requests.write(payload)
                self.requests.flush()
        except OSError:
            pass  # the worker is gone: the reader fails whatever waits for it
        finally:
            with contextlib.suppress(OSError):
                self.requests.close()

    def _read(self) -> None:
        try:
            while frame := _read_exactly(self.answers, FRAME.size):
                kind, size = FRAME.unpack(frame)
                payload = _read_exactly(self.answers, size)
                with self.lock:
                    future = self.waiting.popleft()
                if kind in (FAILED, REFUSED):  # REFUSED: the input's fault, as in this process
                    failure = WorkerFailed if kind == FAILED else BadRequest
                    future.set_exception(failure(payload.decode("utf-8", "replace")))
                else:
                    future.set_result(_answer(kind, payload))
        except Exception as exc:  # a broken pipe or answer: whatever waits must not hang
            reason = f"failed: {type(exc).__name__}: {exc}"
        else:
            reason = f"exited with status {self.process.wait()}"
        with self.lock:
            self.gone = f"batch worker {self.process.pid} {reason}"
            waiting, self.waiting = list(self.waiting), deque()
        for future in waiting:
            future.set_exception(WorkerFailed(self.gone))

    def close(self) -> None:
        self.outbox.put(None)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for thread in self.threads:
            thread.join(timeout=5)
        if not self.threads[1].is_alive():  # the reader stopped (else close would wait on it)
            self.answers.close()  # left to the collector, it was a ResourceWarning


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if size and len(data) != size:
        if not data:
            return b""
        raise ValueError(f"answer cut short ({len(data)} of {size} bytes)")
    return data


def _answer(kind: int, payload: bytes) -> Answer:
    if kind == READY:
        return memoryview(b""), b"", {}
    body_size, rows, scored, failed, lines, *timings = COUNTS.unpack_from(payload)
    view = memoryview(payload)  # slices without copying the output again
    body, errors = view[COUNTS.size : COUNTS.size + body_size], payload[COUNTS.size + body_size :]
    counts = {"rows": rows, "scored": scored, "failed": failed, "lines": lines}
    return body, errors, counts | {"timings": dict(zip(TIMINGS, timings, strict=True))}


class WorkerPool:
    """Worker processes that score blocks of lines; one pool per container."""

    def __init__(self, count: int) -> None:
        self.workers = [_Worker() for _ in range(count)]

    @property
    def alive(self) -> bool:
        return all(w.process.poll() is None for w in self.workers)

    def close(self) -> None:
        for worker in self.workers:
            worker.close()

    def score_span(
        self, job: Job, span: ByteRange, target: IO[bytes], errors: IO[bytes], ort_threads: int = 1
    ) -> SpanResult:
        """What `job.score_span` does for a text span, on the workers (each scores its blocks
        with `job.score_span`, in its own process, with `ort_threads` onnxruntime threads)."""
        self._init(job, ort_threads)
        result = SpanResult()
        queue: deque[tuple[Future[Answer] | None, int]] = deque()  # blocks, their bytes; None: end
        ready = threading.Condition()
        free = threading.Semaphore(IN_FLIGHT_PER_WORKER * len(self.workers))
        failure: list[BaseException] = []

        def write_in_order() -> None:
            offset = 0  # lines before the block: a worker numbers lines from 1 in each block
            while True:
                with ready:
                    ready.wait_for(lambda: bool(queue))
                    block, size = queue.popleft()
                if block is None:
                    return
                try:
                    if not failure:
                        body, failed, counts = block.result()
                        began = time.perf_counter()
                        target.write(body)
                        if failed:
                            errors.write(shift_error_lines(failed, "line", offset))
                        offset += counts["lines"]
                        result.add(counts)
                        if job.progress is not None:
                            job.progress(counts["rows"], size)
                        result.timings["write_s"] += time.perf_counter() - began
                except BaseException as exc:  # recorded; the sending loop raises it
                    failure.append(exc)
                finally:
                    free.release()

        writer = threading.Thread(target=write_in_order, name="aiaas-batch-write", daemon=True)
        writer.start()
        try:
            for number, (start, stop) in enumerate(span_blocks(job, span, BLOCK_BYTES)):
                while not free.acquire(timeout=0.5):
                    if failure:
                        break
                if failure:
                    break
                block: Future[Answer] = Future()
                with ready:
                    queue.append((block, stop - start))
                    ready.notify()
                worker = self.workers[number % len(self.workers)]
                worker.send(BLOCK, BOUNDS.pack(start, stop), block)
        finally:
            with ready:
                queue.append((None, 0))
                ready.notify()
            writer.join()
        if failure:
            raise failure[0]
        return result

    def _init(self, job: Job, ort_threads: int) -> None:
        settings = {
            "ort_threads": ort_threads,
            "store": job.store.uri,
            "input": job.obj.input_key,
            "size": job.info.size,
            "etag": job.info.etag,
            "model_path": str(job.model.path),
            "manifest": job.model.manifest.to_dict(),
            "max_batch_size": job.model.max_batch_size,
            "chunk_rows": job.chunk_rows,
            "max_line_bytes": job.max_line_bytes,
        }
        payload = json.dumps(settings).encode()
        started = []
        for worker in self.workers:
            future: Future[Any] = Future()
            worker.send(INIT, payload, future)
            started.append(future)
        for future in started:
            future.result()


_pool: WorkerPool | None = None
_pool_lock = threading.Lock()


@contextlib.contextmanager
def worker_pool(count: int) -> Iterator[WorkerPool]:
    """The container's pool of `count` workers, started on first use; a run that fails leaves
    the workers in an unknown state, so they are stopped and the next run starts new ones."""
    global _pool
    with _pool_lock:
        if _pool is not None and (len(_pool.workers) != count or not _pool.alive):
            _pool.close()
            _pool = None
        if _pool is None:
            _pool = WorkerPool(count)
        pool = _pool
        try:
            yield pool
        except BaseException:
            pool.close()
            _pool = None
            raise


@atexit.register
def _stop_pool() -> None:
    if _pool is not None:
        _pool.close()


# ---- a worker process ------------------------------------------------------------------------


class _Scoring:
    """A worker's job: the input object and model version an INIT message named."""

    job: Job

    def __init__(self, settings: dict[str, Any], previous: _Scoring | None) -> None:
        manifest = ModelManifest.from_dict(settings["manifest"])
        path = Path(settings["model_path"])
        model = previous.job.model if previous is not None else None
        if model is None or model.path != path or model.manifest != manifest:
            model = LoadedModel(
                manifest,
                path,
                max_batch_size=settings["max_batch_size"],
                threads=int(settings["ort_threads"]),
            )
        store = previous.job.store if previous is not None else None
        if store is None or store.uri != settings["store"]:
            store = open_store(settings["store"])
        obj = parse_input_key(settings["input"])
        if obj is None:
            raise WorkerFailed(f"{settings['input']!r} is not a batch input key")
        info = ObjectInfo(obj.input_key, int(settings["size"]), str(settings["etag"]))
        self.job = open_job(
            store, model, obj, info, int(settings["chunk_rows"]), int(settings["max_line_bytes"])
        )

    def block(self, start: int, end: int) -> list[bytes]:
        """Score the lines starting in [start, end): COUNTS, the output's pieces, the errors."""
        body, errors = Pieces(), io.BytesIO()
        result = score_span(self.job, ByteRange(start, end), cast(IO[bytes], body), errors)
        counts = COUNTS.pack(
            body.size,
            result.rows,
            result.scored,
            result.failed,
            result.lines,
            *(result.timings[name] for name in TIMINGS),
        )
        return [counts, *body.pieces, errors.getvalue()]


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """A worker's loop: answer each message until the calling process closes the pipe."""
    scoring: _Scoring | None = None
    while frame := _read_exactly(requests, FRAME.size):
        kind, size = FRAME.unpack(frame)
        payload = _read_exactly(requests, size)
        try:
            if kind == INIT:
                scoring = _Scoring(json.loads(payload), scoring)
                answer, reply = READY, [b""]
            elif scoring is not None:
                answer, reply = DONE, scoring.block(*BOUNDS.unpack(payload))
            else:
                raise WorkerFailed("a block came before the model was set")
        except Exception as exc:
            refused = isinstance(exc, AiaasError) and exc.status < HTTPStatus.INTERNAL_SERVER_ERROR
            message = exc.message if isinstance(exc, AiaasError) else f"{type(exc).__name__}: {exc}"
            where = "" if refused else f"batch worker {os.getpid()}: "
            answer, reply = REFUSED if refused else FAILED, [f"{where}{message}".encode()]
        answers.write(FRAME.pack(answer, sum(map(len, reply))))
        for piece in reply:
            answers.write(piece)
        answers.flush()


def main() -> None:
    # The pipe to the caller is a private copy of stdout; stdout itself goes to stderr, so a
    # stray print (or a library's) can never corrupt an answer.
    with os.fdopen(os.dup(1), "wb") as answers:
        os.dup2(2, 1)
        serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
