"""Server-level answers of the Open Inference Protocol: live, ready, server metadata."""

from __future__ import annotations

import logging
from typing import Any

from functions.runtime.errors import AiaasError, public_answer
from functions.runtime.registry import Registry
from functions.runtime.said_once import SaidOnce

log = logging.getLogger("aiaas.health")

SERVER_NAME = "aiaas"
SERVER_VERSION = "0.1.0"
EXTENSIONS = ("binary_tensor_data", "classification")


def live() -> dict[str, Any]:
    return {"live": True}


def server_metadata() -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": list(EXTENSIONS)}


class StoreReadiness:
    """Ready means the registry's store answers a listing. A probe comes every few seconds:
    each kind of failure is logged once until the store answers again, and that too."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._failures = SaidOnce(log, "the store answers again")

    def check(self) -> tuple[bool, dict[str, Any]]:
        """(ready?, the answer)."""
        uri = self.registry.store.uri
        try:
            self.registry.store.list_dirs("models")
        except AiaasError as exc:
            self._failures.failed(
                f"not ready: the model store {uri} cannot be listed: {exc.message}"
            )
            return False, {"error": public_answer(exc), "ready": False}
        self._failures.worked(f"ready: the model store {uri} answers again")
        return True, {"ready": True}
