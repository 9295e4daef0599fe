"""Compare two versions of a model on a file already in the store (#17 item 4).

The report is the one `aiaas compare` prints (`functions.runtime.comparison`), as JSON. It
holds what a picture needs (the cross-version confusion matrix, or a sample of both versions'
predictions with the truth) rather than a PNG: drawing needs matplotlib, which the control
function does not ship, and a client draws it in its own style (`aiaas compare --png` does).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from functions.control.context import Plane
from functions.control.jobs import named_by_caller
from functions.control.schemas import ERRORS, JSON_BODY, CompareSpec
from functions.runtime import names
from functions.runtime.comparison.budget import SETTING, CompareBudget
from functions.runtime.comparison.run import CompareRequest, compare_versions
from functions.runtime.errors import BadRequest

router = APIRouter(prefix="/control/models", tags=["models"], responses=ERRORS)

# Where a model's files are: its batch inputs and outputs, and its captured requests.
DATA_PREFIXES = ("batch/{name}/", "capture/{name}/")
# Rows per batch: the deadline is checked between batches, so one takes a fraction of a second
# on most models (a 1,024-wide MLP: ~60 ms for both versions); tiny models lose ~0.1 ms a batch.
CHUNK_ROWS = 256
# Of a Lambda invocation's remaining time, kept back to answer (and log) after a deadline.
ANSWER_MARGIN_S = 2.0


@router.post(
    "/{name}/compare",
    summary="Score a file in the store with two versions: agreement, metric deltas, latency",
    responses=JSON_BODY,
)
async def compare(name: str, spec: CompareSpec, plane: Plane, http: Request) -> dict[str, Any]:
    budget = time_budget(plane.settings.compare_max_seconds, http.scope.get("aws.context"))
    name = names.model_name(name)
    key = data_key(name, spec.data)
    a, b = names.version_name(spec.a), names.version_name(spec.b)
    budget.advice = (
        f"run `aiaas compare {name} {a} {b} --data {key}` instead (it reads the store "
        "itself, with no time limit, and shows its progress)"
    )
    request = CompareRequest(
        name,
        a,
        b,
        key,
        spec.label,
        spec.max_rows,
        latency_calls=spec.latency_calls,
        chunk_rows=CHUNK_ROWS,
    )

    def compared() -> dict[str, Any]:
        with named_by_caller(read=True):  # a folder, or under a file: no such object
            return compare_versions(plane.models(), request, budget=budget)

    return await run_in_threadpool(compared)


def time_budget(seconds: float, context: Any) -> CompareBudget:
    """`seconds` (`AIAAS_COMPARE_MAX_SECONDS`), or less where the Lambda invocation has less
    left, minus a margin to answer in: its timeout would answer the caller a bare 5xx."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return CompareBudget(seconds)
    left = remaining() / 1000 - ANSWER_MARGIN_S
    if left >= seconds:
        return CompareBudget(seconds)
    return CompareBudget(
        max(left, 0.0),
        f"the control function's time left, {left + ANSWER_MARGIN_S:.1f} s, "
        f"less {ANSWER_MARGIN_S:g} s to answer; {SETTING} is {seconds:g} s",
    )


def data_key(name: str, key: str) -> str:
    """`key` when it lies under the model's own batch/ or capture/ prefix, else a 400."""
    allowed = [prefix.format(name=name) for prefix in DATA_PREFIXES]
    parts = key.split("/")
    if not any(key.startswith(p) for p in allowed) or any(p in ("", ".", "..") for p in parts):
        raise BadRequest(
            f"data must be a key under {' or '.join(allowed)} (a batch input or a capture "
            f"file of this model); got {key[:200]!r}"
        )
    return names.store_key(key, "data")
