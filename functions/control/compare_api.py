"""Compare two versions of a model on a file already in the store (#17 item 4).

The report is the one `aiaas compare` prints (`functions.runtime.comparison`), as JSON. It
holds what a picture needs (the cross-version confusion matrix, or a sample of both versions'
predictions with the truth) rather than a PNG: drawing needs matplotlib, which the control
function does not ship, and a client draws it in its own style (`aiaas compare --png` does).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from functions.control.context import Plane
from functions.control.schemas import ERRORS, CompareSpec
from functions.runtime import names
from functions.runtime.comparison.run import CompareRequest, compare_versions
from functions.runtime.errors import BadRequest

router = APIRouter(prefix="/control/models", tags=["models"], responses=ERRORS)

# Where a model's files are: its batch inputs and outputs, and its captured requests.
DATA_PREFIXES = ("batch/{name}/", "capture/{name}/")


@router.post(
    "/{name}/compare",
    summary="Score a file in the store with two versions: agreement, metric deltas, latency",
)
async def compare(name: str, spec: CompareSpec, plane: Plane) -> dict[str, Any]:
    name = names.model_name(name)
    key = data_key(name, spec.data)
    request = CompareRequest(
        name, spec.a, spec.b, key, spec.label, spec.max_rows, latency_calls=spec.latency_calls
    )
    return await run_in_threadpool(compare_versions, plane.models(), request)


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
