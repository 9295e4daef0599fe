"""Server-level answers of the Open Inference Protocol: live, ready, server metadata."""

from __future__ import annotations

from typing import Any

from functions.runtime.errors import AiaasError
from functions.runtime.registry import Registry

SERVER_NAME = "aiaas"
SERVER_VERSION = "0.1.0"
EXTENSIONS = ("binary_tensor_data",)


def live() -> dict[str, Any]:
    return {"live": True}


def server_metadata() -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": list(EXTENSIONS)}


def registry_ready(registry: Registry) -> tuple[bool, dict[str, Any]]:
    """(ready?, the answer): ready means the registry's store answers a listing."""
    try:
        registry.store.list_dirs("models")
    except AiaasError as exc:
        return False, {"error": exc.public_message, "ready": False}
    return True, {"ready": True}
