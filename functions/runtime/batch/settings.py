"""How batch runs score: read once from the environment at an entry point, then passed down.

Nothing below the entry points (the batch function's handler, `aiaas batch`, the local shard
pool) reads or writes environment variables to steer a run; worker processes get what they
need in their INIT message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from functions.runtime.batch.source import MAX_LINE_BYTES
from functions.runtime.errors import AiaasError, BadRequest
from functions.runtime.onnx_session import SMALL_MODEL_BYTES, cpu_count

DEFAULT_CHUNK_ROWS = 4096
DEFAULT_SHARD_BYTES = 256 * 1024 * 1024
# Text spans smaller than this are scored in this process: starting workers would cost more.
PARALLEL_MIN_BYTES = 8 * 1024 * 1024
MIN_CPUS_FOR_WORKERS = 3  # below, the automatic worker count is this process alone
# A run keeps ~1.4 cores busy and a big one its workers every core: one at a time loses little.
DEFAULT_LOCAL_RUNS = 1
DEFAULT_LOCAL_QUEUE = 100
# Set by `aiaas serve` for one process only: the time (Unix seconds) of its start, before which
# an input must have been placed for that process to line its job up again (functions/control/
# left_jobs.py); empty or unset: it lines up none.
LOCAL_RESUME_ENV = "AIAAS_BATCH_LOCAL_RESUME_BEFORE"
# The ControlPlane's environment in template.yaml (`aiaas batch --deployed --wait` reads them
# from the caller's: the stack's outputs BatchQueueUrl and BatchDeadLetterQueueUrl); read by
# stalls.py for a job pending past its queue message's life.
QUEUE_URL_ENV = "AIAAS_BATCH_QUEUE_URL"
DEAD_LETTER_URL_ENV = "AIAAS_BATCH_DLQ_URL"


def queue_urls(env: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """The batch queue's and its dead-letter queue's URLs, where set."""
    env = os.environ if env is None else env
    return env.get(QUEUE_URL_ENV) or None, env.get(DEAD_LETTER_URL_ENV) or None


@dataclass(frozen=True)
class BatchSettings:
    chunk_rows: int = DEFAULT_CHUNK_ROWS  # rows read, scored and written at a time
    max_line_bytes: int = MAX_LINE_BYTES  # a longer text line is a bad row, never held whole
    workers: int = 0  # worker processes for a big text span; 0: automatic
    worker_ort_threads: int = (
        1  # onnxruntime threads in each worker: the workers are the parallelism
    )
    shard_bytes: int = DEFAULT_SHARD_BYTES  # inputs above this fan out (with a state machine)
    state_machine: str = ""  # the Distributed Map's ARN; empty: every input runs whole
    # `aiaas serve` on a directory store: jobs scored at once, and jobs that may wait for them
    local_runs: int = DEFAULT_LOCAL_RUNS
    local_queue: int = DEFAULT_LOCAL_QUEUE
    local_resume_before: float | None = None  # LOCAL_RESUME_ENV: None in all but one process

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, chunk_rows: int | None = None
    ) -> BatchSettings:
        """`AIAAS_BATCH_CHUNK_ROWS`, `AIAAS_BATCH_MAX_LINE_BYTES`, `AIAAS_BATCH_WORKERS`,
        `AIAAS_ORT_THREADS` (for workers),
        `AIAAS_BATCH_SHARD_BYTES`, `AIAAS_BATCH_STATE_MACHINE`, `AIAAS_BATCH_LOCAL_RUNS`,
        `AIAAS_BATCH_LOCAL_QUEUE`; unset means the default.
        `chunk_rows` (a command's flag) wins over its variable, which is then not read."""
        env = os.environ if env is None else env
        settings = cls(
            workers=_whole(env, "AIAAS_BATCH_WORKERS", 0),
            max_line_bytes=_whole(env, "AIAAS_BATCH_MAX_LINE_BYTES", 0) or MAX_LINE_BYTES,
            worker_ort_threads=_whole(env, "AIAAS_ORT_THREADS", 0) or 1,
            shard_bytes=_whole(env, "AIAAS_BATCH_SHARD_BYTES", DEFAULT_SHARD_BYTES),
            state_machine=env.get("AIAAS_BATCH_STATE_MACHINE", ""),
            local_runs=_whole(env, "AIAAS_BATCH_LOCAL_RUNS", 0) or DEFAULT_LOCAL_RUNS,
            local_queue=_whole(env, "AIAAS_BATCH_LOCAL_QUEUE", 0) or DEFAULT_LOCAL_QUEUE,
            local_resume_before=_time(env, LOCAL_RESUME_ENV),
        )
        if chunk_rows is None and env.get("AIAAS_BATCH_CHUNK_ROWS", "").strip():
            chunk_rows = _whole(env, "AIAAS_BATCH_CHUNK_ROWS", 0)
            if chunk_rows == 0:
                raise AiaasError(
                    f"AIAAS_BATCH_CHUNK_ROWS must be positive, got 0 (unset: {DEFAULT_CHUNK_ROWS})"
                )
        return settings.with_chunk_rows(chunk_rows)

    def with_chunk_rows(self, rows: int | None) -> BatchSettings:
        """These settings with `rows` per chunk (None: unchanged)."""
        if rows is None:
            return self
        if rows <= 0:
            raise BadRequest(f"chunk rows must be positive, got {rows}")
        return replace(self, chunk_rows=rows)

    def workers_for(self, size: int, model_bytes: int = 0) -> int:
        """Worker processes for a text span of `size` bytes; 1 means scoring in this process.

        By default one per CPU from 3 CPUs up, for models under 8 MB: a bigger model computes
        on every CPU already (its session's intra-op threads), and N workers would hold N
        copies of it. On 2 CPUs this process (parsing, with scoring and writing on their own
        threads) keeps ~1.4 cores busy, and two workers measured slower (1M CSV rows: 3.8 s
        against 3.5 s): they spend ~6.6 CPU-us a row against 5.0 here.
        """
        cpus = cpu_count()
        automatic = cpus if cpus >= MIN_CPUS_FOR_WORKERS and model_bytes < SMALL_MODEL_BYTES else 1
        count = self.workers or automatic
        return count if count > 1 and size >= PARALLEL_MIN_BYTES else 1


def _whole(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise AiaasError(
            f"{name} must be a whole number, {_RANGES.get(name, _OR_DEFAULT)}; got {raw!r}"
        )
    return int(raw)


def _time(env: Mapping[str, str], name: str) -> float | None:
    raw = env.get(name, "").strip()
    try:
        return float(raw) if raw else None
    except ValueError:
        raise AiaasError(f"{name} must be a time in Unix seconds; got {raw!r}") from None


_OR_DEFAULT = "0 or more (0 or unset: the default)"
_RANGES = {"AIAAS_BATCH_CHUNK_ROWS": "1 or more", "AIAAS_BATCH_SHARD_BYTES": "0 or more"}
