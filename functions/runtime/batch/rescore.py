"""What a re-submission of bytes already scored is told: its run stands, and how to score again.

On S3 the same bytes have the same ETag, hence the same run id, and a finished run is never
redone (SQS delivers at least once: a duplicate must not score twice). A promote since, or a
failure fixed since, would then pass unseen: `aiaas batch` exits 1 naming `--name`, the event
path logs this at WARNING (run.py), and the control plane answers 409 (functions/control/jobs.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from functions.runtime.batch.layout import BatchObject, input_key
from functions.runtime.batch.status import RunStatus
from functions.runtime.errors import AiaasError
from functions.runtime.registry import Registry


def renamed(file: str, tag: str) -> str:
    """`file` with `tag` before its extensions: day/rows.csv.gz -> day/rows-v2.csv.gz."""
    suffix = "".join(PurePosixPath(file).suffixes)
    return f"{file[: len(file) - len(suffix)]}{tag}{suffix}"


def version_now(registry: Registry, model: str) -> str | None:
    """The version a new run of `model` would use; None when it cannot be read (the run
    that stands says enough, and a skip must not fail on it)."""
    try:
        return registry.resolve(model).version
    except AiaasError:
        return None


def stale_reason(model: str, done: Mapping[str, Any], now: str | None) -> str | None:
    """Why the finished run of these bytes is not what a new run would answer, else None."""
    version = done.get("version")
    if done.get("status") == RunStatus.FAILED:
        return f"it failed: {str(done.get('error', ''))[:300]}"
    if version is not None and now is not None and version != now:
        return f"{model} is now {model}:{now}, and that run's output is {model}:{version}'s"
    return None


def already_scored(obj: BatchObject, done: Mapping[str, Any], now: str | None) -> str:
    """One line: which run scored these very bytes, why that may be stale, how to score again."""
    version = done.get("version")
    by = f" with {obj.model}:{version}" if version is not None else ""
    reason = stale_reason(obj.model, done, now)
    tag = f"-v{now}" if reason and now and now != version else "-2"
    return (
        f"these very bytes of {obj.input_key} were already scored by run {done.get('run_id')}"
        f"{by} ({done.get('status')}: {obj.summary_key})"
        + (f"; {reason}" if reason else "")
        + "; a run is kept per upload, so nothing is scored again: to score them again, "
        f"upload them under another name, e.g. {input_key(obj.model, renamed(obj.file, tag))}"
    )
