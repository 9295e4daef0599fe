"""Lambda entry point for `GET /v2/health/live`, `GET /v2/health/ready` and `GET /v2`.

Kept apart from the per-model functions: it loads no model and imports neither onnxruntime nor
Powertools, so it answers in microseconds after a cold start of tens of milliseconds. Ready means
the registry answers; each model's own readiness is `/v2/models/{name}/ready`.
"""

from __future__ import annotations

from typing import Any

from functions.predict import http
from functions.predict.http import HttpResponse
from functions.predict.routes import match, route
from functions.runtime.dataplane import server
from functions.runtime.errors import AiaasError
from functions.runtime.registry import Registry
from functions.runtime.settings import RuntimeSettings
from functions.runtime.store import open_store

ROUTES = (
    route("GET", "/v2/health/live", "live"),
    route("GET", "/v2/health/ready", "ready"),
    route("GET", "/v2", "metadata"),
)
SETTINGS = RuntimeSettings.from_env()
REGISTRY = Registry(open_store(SETTINGS.store, SETTINGS.s3))
# A good answer holds a few seconds, never longer than the alias TTL (AIAAS_ALIAS_TTL=0: none).
READINESS = server.StoreReadiness(REGISTRY, min(server.GOOD_FOR_S, SETTINGS.alias_ttl))


def handler(event: dict[str, Any], context: object = None) -> HttpResponse:
    """HTTP API v2 event -> health or server metadata response."""
    try:
        request = http.parse_event(event, max_body=64 * 1024)
        found, _ = match(ROUTES, request.method, request.path)
        if found.action == "live":
            return http.json_response(200, server.live())
        if found.action == "metadata":
            return http.json_response(200, server.server_metadata())
        ok, doc = READINESS.check()
        return http.json_response(200 if ok else 503, doc)
    except AiaasError as exc:
        return http.error_response(exc)
