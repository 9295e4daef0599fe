"""Lambda entry point for `GET /v2/health/live`, `GET /v2/health/ready` and `GET /v2`.

Kept apart from the per-model functions: it loads no model and answers in microseconds.
Ready means the registry answers; each model's own readiness is `/v2/models/{name}/ready`.
"""

from __future__ import annotations

from typing import Any

from functions.predict import http
from functions.predict.http import HttpResponse
from functions.predict.routes import match, route
from functions.predict.service import SERVER_NAME, SERVER_VERSION
from functions.runtime.errors import AiaasError
from functions.runtime.registry import Registry
from functions.runtime.store import open_store

ROUTES = (
    route("GET", "/v2/health/live", "live"),
    route("GET", "/v2/health/ready", "ready"),
    route("GET", "/v2", "metadata"),
)
REGISTRY = Registry(open_store())


def handler(event: dict[str, Any], context: object = None) -> HttpResponse:
    """HTTP API v2 event -> health or server metadata response."""
    try:
        request = http.parse_event(event, max_body=64 * 1024)
        found, _ = match(ROUTES, request.method, request.path)
        if found.action == "live":
            return http.json_response(200, {"live": True})
        if found.action == "metadata":
            return http.json_response(
                200,
                {
                    "name": SERVER_NAME,
                    "version": SERVER_VERSION,
                    "extensions": ["binary_tensor_data"],
                },
            )
        try:
            REGISTRY.store.list_dirs("models")
        except AiaasError as exc:
            return http.json_response(503, {"error": exc.public_message, "ready": False})
        return http.json_response(200, {"ready": True})
    except AiaasError as exc:
        return http.error_response(exc)
