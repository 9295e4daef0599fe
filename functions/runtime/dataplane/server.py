"""Server-level answers of the Open Inference Protocol: live, ready, server metadata."""

from __future__ import annotations

import logging
from typing import Any

from functions.runtime.errors import AiaasError, public_answer
from functions.runtime.registry import Registry

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
        self._said: set[str] = set()  # the failures logged since the store last answered

    def check(self) -> tuple[bool, dict[str, Any]]:
        """(ready?, the answer)."""
        uri = self.registry.store.uri
        try:
            self.registry.store.list_dirs("models")
        except AiaasError as exc:
            if exc.message not in self._said:
                self._said.add(exc.message)
                log.warning(
                    "not ready: the model store %s cannot be listed: %s "
                    "(said once until the store answers again)",
                    uri,
                    exc.message,
                )
            return False, {"error": public_answer(exc), "ready": False}
        if self._said:
            self._said.clear()
            log.info("ready: the model store %s answers again", uri)
        return True, {"ready": True}
