"""Server-level answers of the Open Inference Protocol: live, ready, server metadata."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from functions.runtime.errors import AiaasError, public_answer
from functions.runtime.registry import Registry
from functions.runtime.said_once import SaidOnce

log = logging.getLogger("aiaas.health")

SERVER_NAME = "aiaas"
SERVER_VERSION = "0.1.0"
EXTENSIONS = ("binary_tensor_data", "classification")
GOOD_FOR_S = 10.0  # seconds a store that answered counts as ready without asking it again


def live() -> dict[str, Any]:
    return {"live": True}


def server_metadata() -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": list(EXTENSIONS)}


class StoreReadiness:
    """Ready means the registry's store answers a listing. A probe comes every few seconds:
    each kind of failure is logged once until the store answers again, and that too.

    A good answer holds for `GOOD_FOR_S` (a LIST each probe cost more than the reference
    workload's every other S3 request: docs/cost.md); a bad one holds for nothing, so the
    next probe sees the store answer again at once. Each check is one request (MaxKeys=1)."""

    def __init__(self, registry: Registry, good_for: float = GOOD_FOR_S) -> None:
        self.registry = registry
        self.good_for = good_for
        self._good_until = -math.inf
        self._failures = SaidOnce(log, "the store answers again")

    def check(self) -> tuple[bool, dict[str, Any]]:
        """(ready?, the answer)."""
        if time.monotonic() < self._good_until:
            return True, {"ready": True}
        uri = self.registry.store.uri
        try:
            self.registry.store.answers("models")
        except AiaasError as exc:
            self._good_until = -math.inf
            self._failures.failed(
                f"not ready: the model store {uri} cannot be listed: {exc.message}"
            )
            return False, {"error": public_answer(exc), "ready": False}
        self._good_until = time.monotonic() + self.good_for
        self._failures.worked(f"ready: the model store {uri} answers again")
        return True, {"ready": True}
